"""Prompt-to-leaderboard on 135k Chatbot Arena battles: a leaderboard per prompt, per category, and a router.

Needs the tagged extract at ../shared/data/arena_human_preference_140k (the
shipped ``bradley.datasets.load_arena_140k`` has no prompt tags); pass another
path as the first argument.

Run: ``python examples/p2l_arena.py [path/to/arena_human_preference_140k_battles.csv]``
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bradley.models.contextual import ContextualBT
from bradley.routing import route

default = Path(__file__).resolve().parents[2] / "shared" / "data" / "arena_human_preference_140k" / \
    "arena_human_preference_140k_battles.csv"
path = Path(sys.argv[1]) if len(sys.argv) > 1 else default
if not path.exists():
    sys.exit(f"no data at {path}")

battles = pd.read_csv(path)
battles = battles[battles.model_a != battles.model_b].reset_index(drop=True)  # 10 self-battles
battles["if_score"] = battles["if_score"].fillna(0.0)
tags = ["creative_writing", "criteria_complexity", "criteria_creativity", "criteria_domain_knowledge",
        "criteria_problem_solving", "criteria_real_world", "criteria_specificity", "criteria_technical_accuracy",
        "if_flag", "if_score", "math"]

held_out = np.random.default_rng(0).random(len(battles)) < 0.2
train, test = battles[~held_out].reset_index(drop=True), battles[held_out].reset_index(drop=True)

# the penalty 300 is what penalty="auto" picks on this split (see docs/contextual.md)
model = ContextualBT(ties="davidson", penalty=300.0).fit(train, tags)
glob = ContextualBT(ties="davidson", penalty=np.inf).fit(train, tags)
print(f"converged={model.converged_}; held-out 3-way log-loss: contextual {model.log_loss(test, tags):.4f}, "
      f"global {glob.log_loss(test, tags):.4f}")

# one prompt: a hard math question with every criterion set
prompt = {t: [True] for t in tags} | {"creative_writing": [False], "if_flag": [False], "if_score": [1.0]}
# with a penalty the intervals are approximate posterior (Laplace) credible intervals under W ~ N(0, 1/penalty)
# per standardised column (Wald intervals only at penalty 0); the penalty is treated as fixed
print("\nleaderboard of a hard math prompt (95% approximate posterior credible intervals, penalty 300):")
print(model.leaderboard(prompt).head(5)[["item", "score", "lower", "upper", "expected_win_rate"]].round(3)
      .to_string(index=False))

cats = model.category_leaderboards("creative_writing", train[tags])
print("\ntop 3 with and without creative writing:")
print(cats.groupby("creative_writing").head(3)[["creative_writing", "item", "score", "se"]].round(3)
      .to_string(index=False))

# route the held-out prompts: illustrative costs, 10 for the global top 10, 3 for the next 10, 1 otherwise
costs = pd.Series(1.0, index=model.leaderboard(None)["item"])
costs.iloc[:10], costs.iloc[10:20] = 10.0, 3.0
result = route(model, test[tags], costs, average_budget=2.0)
print(f"\nrouter with mean cost <= 2 (leader {result.leader} costs 10): mean cost {result.mean_cost:.2f}, "
      f"win rate vs always the leader {result.win_rate_vs_leader:.3f} (model-based, optimistic: the choices are "
      "selected on the same estimates)")
print(result.summary().head(5).round(3).to_string(index=False))
