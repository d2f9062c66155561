"""Relative scoring from matchups with a (fake, deterministic) judge.

Scenario: a model answered 12 questions; instead of asking a judge for an
absolute confidence per answer, we ask "which of these two answers are you
more confident in?" for a few random pairs, and turn the verdicts into
calibrated Bradley-Terry scores. Replace ``fake_judge`` by a call to an LLM.

Run: ``python examples/relative_scoring.py``
"""

import pandas as pd

from bradley.evaluate import rank_correlation
from bradley.matchups import score_by_matchups

# Hidden "true" confidence of each answer; the fake judge compares them and
# calls close ones a tie, so the run is deterministic.
hidden = {f"answer-{i:02d}": (i * 37 % 12) / 4.0 for i in range(12)}


def fake_judge(left: str, right: str) -> str:
    gap = hidden[left] - hidden[right]
    if abs(gap) < 0.3:
        return "tie"
    return "left" if gap > 0 else "right"


board, matchups = score_by_matchups(list(hidden), fake_judge, design="random", k=5, seed=1)
print(f"{len(matchups)} matchups judged")
print(board.to_text())
top, bottom = board.table["item"].iloc[0], board.table["item"].iloc[-1]
print(f"\nP(judge prefers {top} over {bottom}) = {board.model.predict_proba(top, bottom)[0]:.3f}")
agreement = rank_correlation(board.table.set_index("item")["score"], pd.Series(hidden))
print(f"Kendall tau with the hidden order: {agreement['kendall_tau']:.3f}")
