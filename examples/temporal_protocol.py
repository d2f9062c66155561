"""Fit on the past, predict the next period: rating methods on real dated games.

Data: the poprank fixtures in ../shared/data/poprank_fixtures (computer chess:
7,999 engine games with white advantage and draws; football: Premier League
and La Liga 2019/20 with home advantage and draws). For every period
(chess: blocks of 500 games; football: calendar weeks) each method is fitted
on all earlier games and predicts the period's games, win, draw and loss.

Run: ``python examples/temporal_protocol.py [fixtures-folder]``
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bradley import Comparisons
from bradley.temporal import temporal_evaluation

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/poprank_fixtures"
FIXTURES = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
pd.set_option("display.width", 200)
COLUMNS = ["method", "games", "periods", "log_loss_wdl", "brier_wdl", "log_loss", "brier", "accuracy", "ece",
           "draw_rate_predicted", "draw_rate_observed"]


def methods(data: Comparisons, labels: np.ndarray, warmup: int) -> tuple[list[str], float]:
    """The methods, and DynamicBT's drift w2 chosen on the warm-up periods only (never on predicted games)."""
    names = ["bt", "davidson", "elo", "glicko2", "weng_lin"]
    try:
        from bradley.models.dynamic import DynamicBT
    except ImportError:
        print("(DynamicBT not available: left out)")
        return names, 0.0
    warm = data.take(labels < np.unique(labels)[warmup])
    grid = [1e-6, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2]
    model = DynamicBT(draws="davidson", first_mover=True).select_w2(warm, grid)
    return names + ["dynamic_bt"], float(model.w2)


def chess() -> Comparisons:
    games = pd.read_csv(FIXTURES / "computer_chess_short.csv")
    outcome = games["result"].map({"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}).to_numpy()
    # white is left and had the first-move advantage (order 1); time = game number
    return Comparisons.from_arrays(games["white"], games["black"], outcome, time=games["game"].to_numpy(float))


def football(name: str) -> Comparisons:
    m = pd.read_csv(FIXTURES / f"football_{name}_2019-20_matches.csv")
    outcome = np.sign(m["goals1"] - m["goals2"]).map({1: 1.0, 0: 0.5, -1: 0.0}).to_numpy()
    days = (pd.to_datetime(m["date"]) - pd.Timestamp("2019-08-01")).dt.days.to_numpy(float)
    return Comparisons.from_arrays(m["team1"], m["team2"], outcome, time=days)  # home team is left


def main() -> None:
    runs = [("chess (17 engines, blocks of 500 games)", chess(), 500.0, 2),
            ("football en1 2019/20 (weeks)", football("en1"), 7.0, 4),
            ("football es1 2019/20 (weeks)", football("es1"), 7.0, 4)]
    for title, data, width, warmup in runs:
        labels = np.floor_divide(data.time, width)
        names, w2 = methods(data, labels, warmup)
        result = temporal_evaluation(data, names, period=labels, min_train_periods=warmup, order_effect=True,
                                     dynamic_w2=w2)
        print(f"\n== {title}: {result.table['games'].iloc[0]} games predicted over {len(result.splits)} periods"
              f" (DynamicBT w2 = {w2:g} per time unit, chosen on the warm-up periods)")
        print(result.summary()[COLUMNS].round(4).to_string(index=False))


if __name__ == "__main__":
    main()
