"""Fit on the past, predict the next period: does DynamicBT beat a tuned Elo on real dated games?

Data: the poprank fixtures in ../shared/data/poprank_fixtures. Football:
Premier League (en1) and La Liga (es1) 2019/20, real match dates (with the
COVID break), home advantage and draws; periods are calendar weeks. Each
method is fitted on all earlier games and predicts the week's games (win,
draw, loss). The first ``WARMUP`` weeks with games are a warm-up: they are
never scored, and the tuned settings are chosen on them only, the same way for
both tuned methods (rolling origin over the warm-up weeks, three-class
log-loss): Elo's K from ``K_GRID`` and DynamicBT's drift ``w2`` (per day)
from ``W2_GRID``. DynamicBT at ``w2 = 0`` (the static model with the same
anchor prior) is a baseline. The paired table gives, per method, the mean
per-game difference in three-class log-loss against the tuned Elo
(negative: better than Elo) with standard errors (per game and clustered by
week).

Chess (``--chess``): the engine games carry no dates; the game index (the
file's order of pairings) stands in for time, so it says nothing about
drift in real time and is not part of the claim.

Run: ``python examples/temporal_protocol.py [fixtures-folder] [--chess]``
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
DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/poprank_fixtures"
FIXTURES = Path(ARGS[0]) if ARGS else DEFAULT
WARMUP = 8
K_GRID = (5.0, 10.0, 20.0, 30.0, 40.0, 60.0, 80.0, 120.0)
W2_GRID = (0.0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
pd.set_option("display.width", 200)


def dynamic(w2: float):
    """DynamicBT with Davidson draws and a home advantage, as a temporal_evaluation callable."""
    from bradley.models.dynamic import DynamicBT

    def fit(train: Comparisons):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = DynamicBT(w2=w2, draws="davidson", first_mover=True).fit(train)
        order = lambda test: np.ones(len(test)) if test.order is None else test.order  # noqa: E731
        return lambda test: np.asarray(model.predict_proba(test.left, test.right, test.time, order=order(test)))
    return fit


def tune(warm: Comparisons, labels: np.ndarray, candidates: dict) -> tuple[object, pd.Series]:
    """The candidate with the lowest three-class log-loss, rolling origin over the warm-up periods."""
    result = temporal_evaluation(warm, candidates, period=labels, min_train_periods=1, order_effect=True,
                                 draws=True)
    path = result.table.set_index("method")["log_loss_wdl"]
    return path.idxmin(), path


def football(name: str) -> Comparisons:
    m = pd.read_csv(FIXTURES / f"football_{name}_2019-20_matches.csv")
    outcome = np.sign(m["goals1"] - m["goals2"]).map({1: 1.0, 0: 0.5, -1: 0.0}).to_numpy()
    days = (pd.to_datetime(m["date"]) - pd.Timestamp("2019-08-01")).dt.days.to_numpy(float)
    return Comparisons.from_arrays(m["team1"], m["team2"], outcome, time=days)  # home team is left


def chess() -> Comparisons:
    games = pd.read_csv(FIXTURES / "computer_chess_short.csv")
    outcome = games["result"].map({"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}).to_numpy()
    return Comparisons.from_arrays(games["white"], games["black"], outcome, time=games["game"].to_numpy(float))


def evaluate(title: str, data: Comparisons, width: float, warmup: int) -> pd.DataFrame:
    labels = np.floor_divide(data.time, width)
    first_scored = np.unique(labels)[warmup]
    warm_rows = labels < first_scored
    warm = data.take(np.flatnonzero(warm_rows))
    k_name, k_path = tune(warm, labels[warm_rows], {f"{k:g}": EloRater(k=k) for k in K_GRID})
    w_name, w_path = tune(warm, labels[warm_rows], {f"{w:g}": dynamic(w) for w in W2_GRID})
    k, w2 = float(k_name), float(w_name)
    methods = {"elo (tuned K)": EloRater(k=k), "elo K=20": EloRater(k=20.0), "glicko2": "glicko2",
               "bt": "bt", "davidson": "davidson", "dynamic_bt w2=0": dynamic(0.0),
               "dynamic_bt (tuned w2)": dynamic(w2)}
    result = temporal_evaluation(data, methods, period=labels, min_train_periods=warmup, order_effect=True,
                                 draws=True)
    table = result.compare("elo (tuned K)")
    print(f"\n== {title}: {len(result.predictions) // len(methods)} games predicted over {len(result.splits)} "
          f"periods after {warmup} warm-up periods")
    k_edge = ", AT THE EDGE" if k in (min(K_GRID), max(K_GRID)) else ""
    w_edge = ", AT THE EDGE" if w2 == max(W2_GRID) else ""
    print(f"   tuned on the warm-up: Elo K = {k:g} (grid {K_GRID}{k_edge}), "
          f"DynamicBT w2 = {w2:g} per time unit (grid {W2_GRID}{w_edge})")
    print("   warm-up log_loss_wdl by K:", k_path.round(4).to_dict())
    print("   warm-up log_loss_wdl by w2:", w_path.round(4).to_dict())
    print("   three-class log-loss; diff = method - tuned Elo, paired per game:")
    print(table.round(4).to_string(index=False))
    return table.assign(data=title, k=k, w2=w2)


def main() -> None:
    out = [evaluate("football en1 2019/20 (calendar weeks, real dates)", football("en1"), 7.0, WARMUP),
           evaluate("football es1 2019/20 (calendar weeks, real dates)", football("es1"), 7.0, WARMUP)]
    if "--chess" in sys.argv:
        out.append(evaluate("chess (NOT dated: time = game index, blocks of 500)", chess(), 500.0, 2))
    print("\nDynamicBT minus tuned Elo (three-class log-loss, paired):")
    for t in out:
        row = t.set_index("method").loc["dynamic_bt (tuned w2)"]
        print(f"  {t.data.iloc[0]}: {row['diff']:+.4f} (se {row['se_diff']:.4f}, by week {row['se_diff_period']:.4f})")


if __name__ == "__main__":
    main()
