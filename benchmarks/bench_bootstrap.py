"""Bootstrap speed on the 135k Chatbot Arena battles: bradley against evalica.

Times, in one process on the same data, ``bradley.inference.bootstrap_scores``
(1,000 rounds, row resampling by multinomial counts of the unique rows, Newton
refits) against ``evalica.bootstrap(evalica.bradley_terry, ...)`` (scipy's
bootstrap, percentile method, ``--evalica-rounds`` resamples, default 100).
Prints seconds and seconds per round.

Run: ``python benchmarks/bench_bootstrap.py [--rounds 1000] [--evalica-rounds 100]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import bradley
from bradley import inference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--evalica-rounds", type=int, default=100)
    args = parser.parse_args()

    battles = bradley.datasets.load_arena_140k()
    battles = battles[battles.model_a != battles.model_b].reset_index(drop=True)
    data = bradley.read_comparisons(battles)
    model = bradley.BradleyTerry().fit(data)

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bradley.DataWarning)
        boot = inference.bootstrap_scores(model, data, rounds=args.rounds, seed=0)
    ours = time.perf_counter() - start
    print(f"bradley: {args.rounds} rounds in {ours:.2f} s ({1000 * ours / args.rounds:.2f} ms/round); "
          f"{boot.n_fallback} replicates needed the fallback prior")
    for w in caught:
        print("  note:", w.message)

    try:
        import evalica
    except ImportError:
        print("evalica not installed")
        return
    winners = np.where(battles.winner == "model_a", evalica.Winner.X,
                       np.where(battles.winner == "model_b", evalica.Winner.Y, evalica.Winner.Draw)).tolist()
    start = time.perf_counter()
    result = evalica.bootstrap(evalica.bradley_terry, battles.model_a.tolist(), battles.model_b.tolist(), winners,
                               n_resamples=args.evalica_rounds, bootstrap_method="percentile", random_state=0)
    theirs = time.perf_counter() - start
    print(f"evalica: {args.evalica_rounds} rounds in {theirs:.2f} s ({1000 * theirs / args.evalica_rounds:.2f} ms/round); "
          f"per round {theirs / args.evalica_rounds / (ours / args.rounds):.1f}x bradley")
    del result


if __name__ == "__main__":
    main()
