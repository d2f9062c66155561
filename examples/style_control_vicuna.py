"""Style control on the PRD Vicuna-80 verdicts (human and GPT-4 reviewers).

    python examples/style_control_vicuna.py [GENERATIONS_DIR]

GENERATIONS_DIR is PRD's ``data/vicuna80/generations`` folder (``git clone
https://github.com/bcdnlp/PRD``): the answer texts, from which the style
features (length in characters, markdown headers, list items, bold spans)
are counted. bradley ships the verdicts but not the texts, so without the
folder the script prints the plain leaderboards only and says so.
"""

from __future__ import annotations

import sys

import pandas as pd

from bradley import leaderboard, read_comparisons
from bradley.datasets import load_vicuna80
from bradley.style import style_controlled_leaderboard, style_features

pd.set_option("display.width", 120)
folder = sys.argv[1] if len(sys.argv) > 1 else None
responses, verdicts = load_vicuna80(answers=folder)

for reviewer in ("human", "gpt4"):
    battles = verdicts[verdicts["reviewer"] == reviewer]
    if folder is None or responses["answer"].isna().all():
        board = leaderboard(read_comparisons(battles, left="model_1", right="model_2", outcome="outcome"))
        print(f"\n{reviewer} reviewer, plain Bradley-Terry ({len(battles)} verdicts):")
        print(board.table[["rank", "item", "score", "ci_low", "ci_high", "rank_low", "rank_high"]]
              .to_string(index=False))
        continue
    texts = responses.dropna(subset=["answer"]).reset_index(drop=True)
    features = pd.concat([texts[["question_id", "model"]], style_features(texts["answer"])], axis=1)
    have = set(texts["model"])
    battles = battles[battles["model_1"].isin(have) & battles["model_2"].isin(have)]
    result = style_controlled_leaderboard(battles, features, left="model_1", right="model_2")
    print(f"\n{reviewer} reviewer ({len(battles)} verdicts): style-controlled beside plain")
    print(result.table[["item", "score", "rank", "plain_score", "plain_rank", "rank_change"]]
          .to_string(index=False))
    print("style coefficients (log-odds per SD of the normalised difference):")
    print(result.coefficients.round(3).to_string())

if folder is None:
    print("\nNo answer texts given: style features need PRD's data/vicuna80/generations folder "
          "(python examples/style_control_vicuna.py PATH).")
