import pandas as pd
import pytest

from bradley import ComparisonDataError
from bradley.preference_data import pairs_from_scores, rankings_from_scores


@pytest.fixture
def scored():
    # pass rates of generated programs on unit tests, 2 prompts
    return pd.DataFrame(
        {
            "prompt": ["p1"] * 4 + ["p2"] * 3,
            "response": ["a", "b", "c", "d", "e", "f", "g"],
            "score": [1.0, 0.9, 0.3, 0.0, 0.5, 0.45, 0.1],
        }
    )


def test_pass_rate_thresholds(scored):
    pairs = pairs_from_scores(scored, min_chosen=0.8, min_gap=0.4)
    assert sorted(zip(pairs.chosen, pairs.rejected)) == [("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")]
    assert (pairs.margin >= 0.4).all() and not pairs.tie.any()
    capped = pairs_from_scores(scored, min_chosen=0.8, max_rejected=0.0)
    assert sorted(zip(capped.chosen, capped.rejected)) == [("a", "d"), ("b", "d")]


def test_pairing_modes(scored):
    worst = pairs_from_scores(scored, pairing="best_vs_worst")
    assert sorted(zip(worst.prompt, worst.chosen, worst.rejected)) == [("p1", "a", "d"), ("p2", "e", "g")]
    rest = pairs_from_scores(scored, pairing="best_vs_rest")
    assert len(rest) == 3 + 2 and set(rest.chosen) == {"a", "e"}


def test_tie_band_drops_or_keeps(scored):
    dropped = pairs_from_scores(scored, tie_within=0.1)
    assert ("e", "f") not in set(zip(dropped.chosen, dropped.rejected))
    kept = pairs_from_scores(scored, tie_within=0.1, keep_ties=True)
    ties = kept[kept.tie]
    assert set(zip(ties.chosen, ties.rejected)) == {("a", "b"), ("e", "f")}


def test_rankings_with_ties(scored):
    ranks = rankings_from_scores(scored, tie_within=0.05)
    p2 = ranks[ranks.ranking_id == "p2"]
    assert p2[["item", "rank"]].values.tolist() == [["e", 1], ["f", 1], ["g", 3]]
    p1 = ranks[ranks.ranking_id == "p1"]
    assert p1["rank"].tolist() == [1, 2, 3, 4]


def test_bad_input(scored):
    with pytest.raises(ComparisonDataError, match="missing column"):
        pairs_from_scores(scored, score="reward")
    scored.loc[2, "score"] = float("nan")
    with pytest.raises(ComparisonDataError, match="NaN"):
        rankings_from_scores(scored)
    with pytest.raises(ValueError, match="pairing"):
        pairs_from_scores(scored.dropna(), pairing="random")
