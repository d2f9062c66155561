"""Fit on the past, predict the next period: does DynamicBT beat a tuned Elo on real dated games?

Data (all with real dates):

* Football, ../shared/data/poprank_fixtures: Premier League (en1) and La Liga
  (es1) 2019/20, match dates (with the COVID break), home advantage and
  draws; periods are 7-day blocks counted from Thursday 2019-08-01 (not
  calendar weeks). Each league alone, and both pooled into one evaluation
  (teams are disjoint; one K, one w2, one paired SE).
* GenAI-Arena, ../shared/data/genai_arena_20240220: 2,061 human votes between
  image models (9 days, unix time stamps), tasks ``generation`` and
  ``edition``. As on the LMSYS leaderboard, only anonymous votes
  (``anony == True``) are kept: 546 votes cast with the model names shown are
  dropped (the count is printed). Both kinds of tie (``tie``, ``tie (bothbad)``) are draws;
  ``model_a`` is left, positions are randomised so no order effect is fitted;
  periods are days (time in days), the first 3 days are the warm-up. Per
  task and pooled.

Each
method is fitted on all earlier games and predicts the next period's games (win,
draw, loss). The first ``WARMUP`` periods with games are a warm-up: they are
never scored, and the tuned settings are chosen on them only, the same way for
both tuned methods (rolling origin over the warm-up periods, three-class
log-loss): Elo's K from ``K_GRID`` and DynamicBT's drift ``w2`` (per day)
from ``W2_GRID``. DynamicBT at ``w2 = 0`` (the static model with the same
anchor prior) is a baseline. The paired table gives, per method, the mean
per-game difference in three-class log-loss against the tuned Elo
(negative: better than Elo) with standard errors (per game and clustered by
period). Methods without their own draw model (Elo, Glicko-2, BT) get the
protocol's draw link: ``nu`` by maximum likelihood on their own earlier
predictions once these cover 100 games, the smoothed training draw rate
before.

Chess (``--chess``): the engine games carry no dates; the game index (the
file's order of pairings) stands in for time, so it says nothing about
drift in real time and is not part of the claim.

``--quick``: GenAI-Arena pooled only, with short grids (the test run).

Run: ``python examples/temporal_protocol.py [data-folder] [--chess] [--quick]``
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bradley import Comparisons
from bradley.raters import EloRater
from bradley.temporal import temporal_evaluation

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
DATA = Path(ARGS[0]) if ARGS else Path(__file__).resolve().parents[2] / "shared/data"
FIXTURES = DATA / "poprank_fixtures"
ARENA = DATA / "genai_arena_20240220/clean_battle_20240220.csv"
QUICK = "--quick" in sys.argv
WARMUP = 8
K_GRID = (10.0, 30.0, 60.0) if QUICK else (5.0, 10.0, 20.0, 30.0, 40.0, 60.0, 80.0, 120.0)
W2_GRID = (0.0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
#: GenAI-Arena: drift per day (models are updated under one name within days).
W2_GRID_DAYS = (0.0, 0.1, 1.0) if QUICK else (0.0, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
pd.set_option("display.width", 200)


def dynamic(w2: float, home: bool = True):
    """DynamicBT with Davidson draws (and a home advantage), as a temporal_evaluation callable."""
    from bradley.models.dynamic import DynamicBT

    def fit(train: Comparisons):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # no tie in the past (the first days of a small set): no draw parameter to fit; the protocol
            # then gives it the draw link of every method without a draw model (the past draw rate)
            ties = "davidson" if np.any(train.outcome == 0.5) else None
            model = DynamicBT(w2=w2, draws=ties, first_mover=home).fit(train)
        order = lambda test: np.ones(len(test)) if test.order is None else test.order  # noqa: E731
        return lambda test: np.asarray(model.predict_proba(test.left, test.right, test.time, order=order(test)))
    return fit


def tune(warm: Comparisons, labels: np.ndarray, candidates: dict, home: bool) -> tuple[object, pd.Series]:
    """The candidate with the lowest three-class log-loss, rolling origin over the warm-up periods."""
    result = temporal_evaluation(warm, candidates, period=labels, min_train_periods=1, order_effect=home,
                                 draws=True)
    path = result.table.set_index("method")["log_loss_wdl"]
    return path.idxmin(), path


def football(*names: str) -> Comparisons:
    """One league, or several pooled (team names prefixed by the league); time in days, home team left."""
    m = pd.concat([pd.read_csv(FIXTURES / f"football_{n}_2019-20_matches.csv").assign(league=n) for n in names])
    outcome = np.sign(m["goals1"] - m["goals2"]).map({1: 1.0, 0: 0.5, -1: 0.0}).to_numpy()
    days = (pd.to_datetime(m["date"]) - pd.Timestamp("2019-08-01")).dt.days.to_numpy(float)
    return Comparisons.from_arrays(m["league"] + ":" + m["team1"], m["league"] + ":" + m["team2"], outcome,
                                   time=days)


def arena(*tasks: str) -> Comparisons:
    """Anonymous GenAI-Arena battles of the given tasks; time in days since 2024-02-12 00:00 UTC; ties are draws."""
    b = pd.read_csv(ARENA)
    b = b[b["task"].isin(tasks)]
    named = ~b["anony"].astype(bool)  # votes cast with the model names shown: dropped, as on the LMSYS leaderboard
    print(f"\nGenAI-Arena {' + '.join(tasks)}: dropped {int(named.sum())} of {len(b)} non-anonymous votes")
    b = b[~named].sort_values("tstamp", kind="stable")
    outcome = b["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}).to_numpy()
    days = (b["tstamp"].to_numpy(float) - pd.Timestamp("2024-02-12").timestamp()) / 86400.0
    # one battle of a model against itself is dropped
    return Comparisons.from_arrays(b["model_a"], b["model_b"], outcome, time=days, drop_self_comparisons=True)


def chess() -> Comparisons:
    games = pd.read_csv(FIXTURES / "computer_chess_short.csv")
    outcome = games["result"].map({"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}).to_numpy()
    return Comparisons.from_arrays(games["white"], games["black"], outcome, time=games["game"].to_numpy(float))


def evaluate(title: str, data: Comparisons, width: float, warmup: int, w2_grid: tuple = W2_GRID,
             home: bool = True) -> pd.DataFrame:
    labels = np.floor_divide(data.time, width)
    first_scored = np.unique(labels)[warmup]
    warm_rows = labels < first_scored
    warm = data.take(np.flatnonzero(warm_rows))
    k_name, k_path = tune(warm, labels[warm_rows], {f"{k:g}": EloRater(k=k) for k in K_GRID}, home)
    w_name, w_path = tune(warm, labels[warm_rows], {f"{w:g}": dynamic(w, home) for w in w2_grid}, home)
    k, w2 = float(k_name), float(w_name)
    methods = {"elo (tuned K)": EloRater(k=k), "elo K=20": EloRater(k=20.0), "glicko2": "glicko2",
               "bt": "bt", "davidson": "davidson", "dynamic_bt w2=0": dynamic(0.0, home),
               "dynamic_bt (tuned w2)": dynamic(w2, home)}
    result = temporal_evaluation(data, methods, period=labels, min_train_periods=warmup, order_effect=home,
                                 draws=True)
    table = result.compare("elo (tuned K)")
    print(f"\n== {title}: {len(result.predictions) // len(methods)} games predicted over {len(result.splits)} "
          f"periods after {warmup} warm-up periods")
    k_edge = ", AT THE EDGE" if k in (min(K_GRID), max(K_GRID)) else ""
    w_edge = ", AT THE EDGE" if w2 == max(w2_grid) else ""
    print(f"   tuned on the warm-up: Elo K = {k:g} (grid {K_GRID}{k_edge}), "
          f"DynamicBT w2 = {w2:g} per day (grid {w2_grid}{w_edge})")
    print("   warm-up log_loss_wdl by K:", k_path.round(4).to_dict())
    print("   warm-up log_loss_wdl by w2:", w_path.round(4).to_dict())
    print("   three-class log-loss; diff = method - tuned Elo, paired per game:")
    print(table.round(4).to_string(index=False))
    return table.assign(data=title, k=k, w2=w2)


def main() -> None:
    # pooled data are disconnected groups (leagues, tasks): the static fits say so at every origin
    warnings.filterwarnings("ignore", message="the comparison graph has")
    out = []
    if not QUICK:
        out += [evaluate("football en1 2019/20 (7-day blocks, real dates)", football("en1"), 7.0, WARMUP),
                evaluate("football es1 2019/20 (7-day blocks, real dates)", football("es1"), 7.0, WARMUP),
                evaluate("football en1 + es1 pooled (7-day blocks)", football("en1", "es1"), 7.0, WARMUP),
                evaluate("GenAI-Arena generation (days)", arena("generation"), 1.0, 3, W2_GRID_DAYS, False),
                evaluate("GenAI-Arena edition (days)", arena("edition"), 1.0, 3, W2_GRID_DAYS, False)]
    out.append(evaluate("GenAI-Arena generation + edition pooled (days)", arena("generation", "edition"), 1.0, 3,
                        W2_GRID_DAYS, False))
    if "--chess" in sys.argv:
        out.append(evaluate("chess (NOT dated: time = game index, blocks of 500)", chess(), 500.0, 2))
    print("\nDynamicBT minus tuned Elo (three-class log-loss, paired):")
    for t in out:
        row = t.set_index("method").loc["dynamic_bt (tuned w2)"]
        print(f"  {t.data.iloc[0]}: {row['diff']:+.4f} (se {row['se_diff']:.4f}, by period "
              f"{row['se_diff_period']:.4f}; K = {t.k.iloc[0]:g}, w2 = {t.w2.iloc[0]:g})")


if __name__ == "__main__":
    main()
