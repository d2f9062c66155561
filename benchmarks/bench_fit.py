"""Bradley-Terry fitting speed: bradley against choix, evalica and arena-rank.

Generates BT data (scores ~ N(0, 1), uniformly random pairs) at four sizes and
times, in this one process on the same data:

* bradley from integer codes (``Comparisons.from_codes``) and from string
  labels (``Comparisons.from_arrays``), aggregation, MLE check and fit included;
* choix ``ilsr_pairwise`` and ``mm_pairwise`` (on a prebuilt list of
  (winner, loser) tuples: building it is not timed);
* evalica ``bradley_terry`` and ``newman`` (integer codes with a prebuilt
  index, and string labels; the list of ``Winner`` values is prebuilt);
* arena-rank ``BradleyTerry`` (if installed; ``PairDataset.from_pandas``
  included, as its users call it).

Each peer runs with its own defaults. Printed per method: seconds, the ratio
to bradley (integer codes), peak resident memory above the level before the
call (Linux ``VmHWM`` after resetting it), and the largest score difference
after centring against bradley's converged scores (natural-log scale).

``bradley (first call, fresh process)`` is the same integer-code fit in a new
interpreter, ``import bradley`` included (numpy already imported to make the
data): what a one-off script pays. Everything compiled is ahead of time
(numpy/scipy), so there is no compile or cache-load step on first use.

Run: ``python benchmarks/bench_fit.py [--sizes 0,1,2,3] [--all]``. Peers that
cannot finish at a size in reasonable time are skipped unless ``--all``
(choix beyond 1,000 items, evalica's dense n x n matrices at 100,000 items).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

import bradley

SIZES = [(100, 100_000), (1_000, 1_000_000), (10_000, 2_000_000), (100_000, 10_000_000)]


def reset_peak() -> int:
    """Reset the kernel's peak-RSS counter; return current RSS in bytes (0 if unsupported)."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kb("VmRSS") * 1024
    except OSError:
        return 0


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_above(base: int) -> float:
    if not base:
        return float("nan")
    return (_status_kb("VmHWM") * 1024 - base) / 2**20


def generate(n_items: int, n_rows: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(0.0, 1.0, n_items)
    left = rng.integers(0, n_items, n_rows)
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    outcome = (rng.random(n_rows) < expit(truth[left] - truth[right])).astype(np.float64)
    width = len(str(n_items - 1))
    names = np.array([f"model-{k:0{width}d}" for k in range(n_items)], dtype=object)
    return {"left": left, "right": right, "outcome": outcome, "names": names, "n": n_items, "truth": truth}


COLD = """
import time
import numpy as np
rng = np.random.default_rng(0)  # the same draws as generate(), without importing bradley
truth = rng.normal(0.0, 1.0, {n})
left = rng.integers(0, {n}, {m})
right = (left + rng.integers(1, {n}, {m})) % {n}
outcome = (rng.random({m}) < 1.0 / (1.0 + np.exp(truth[right] - truth[left]))).astype(np.float64)
start = time.perf_counter()
import bradley
bradley.BradleyTerry().fit(bradley.Comparisons.from_codes(left, right, outcome))
print(time.perf_counter() - start)
"""


def cold_run(n: int, m: int, repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` fresh interpreters: ``import bradley`` plus the first fit."""
    code = COLD.format(n=n, m=m)
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                   .stdout.split()[-1]) for _ in range(repeat)]
    return {"method": "bradley (first call, fresh process)", "seconds": min(times), "peak_mib": float("nan"),
            "max_abs_diff": float("nan")}


def run(label: str, fn: Callable[[], np.ndarray], reference: np.ndarray | None, repeat: int) -> dict[str, Any]:
    best = float("inf")
    peak = float("nan")
    scores = None
    for _ in range(repeat):
        base = reset_peak()
        start = time.perf_counter()
        scores = fn()
        elapsed = time.perf_counter() - start
        peak = peak_above(base)
        best = min(best, elapsed)
    diff = float("nan")
    if reference is not None and scores is not None:
        s = np.asarray(scores, dtype=np.float64)
        diff = float(np.max(np.abs((s - s.mean()) - reference)))
    return {"method": label, "seconds": best, "peak_mib": peak, "max_abs_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0,1,2,3", help="indices into the size list (default all)")
    parser.add_argument("--all", action="store_true", help="also run peers expected to take minutes or >10 GB")
    args = parser.parse_args()

    try:
        import choix
    except ImportError:  # pragma: no cover
        choix = None
    try:
        import evalica
    except ImportError:  # pragma: no cover
        evalica = None
    try:
        from arena_rank.models.bradley_terry import BradleyTerry as ArenaBT
        from arena_rank.utils.data_utils import PairDataset
    except ImportError:
        ArenaBT = None

    print(f"bradley {bradley.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    rows = []
    for idx in (int(k) for k in args.sizes.split(",")):
        n, m = SIZES[idx]
        data = generate(n, m)
        left, right, outcome, names = data["left"], data["right"], data["outcome"], data["names"]
        left_names, right_names = names[left], names[right]
        repeat = 5 if m <= 100_000 else 3
        slow_repeat = repeat if n <= 1_000 else 1  # evalica's Newman takes minutes at 10,000 items

        def ours_int() -> np.ndarray:
            comps = bradley.Comparisons.from_codes(left, right, outcome)
            return bradley.BradleyTerry().fit(comps).scores_

        def ours_str() -> np.ndarray:
            comps = bradley.Comparisons.from_arrays(left_names, right_names, outcome)
            # items come back sorted by name, which is the code order here
            return bradley.BradleyTerry().fit(comps).scores_

        # warm up imports and allocator once, untimed
        bradley.BradleyTerry(prior=1.0).fit(bradley.Comparisons.from_codes(left[:1000], right[:1000], outcome[:1000], items=n))
        result = run("bradley (int codes)", ours_int, None, repeat)
        reference = ours_int()
        result["max_abs_diff"] = 0.0
        size_rows = [result, run("bradley (string labels)", ours_str, reference, repeat), cold_run(n, m, 3)]

        if choix is not None and (n <= 1_000 or args.all):
            games = list(zip(np.where(outcome == 1, left, right).tolist(), np.where(outcome == 1, right, left).tolist()))
            size_rows.append(run("choix ilsr_pairwise", lambda: choix.ilsr_pairwise(n, games), reference, 1))
            if n <= 100 or args.all:  # about 100 s at 1,000 items
                size_rows.append(run("choix mm_pairwise", lambda: choix.mm_pairwise(n, games), reference, 1))
        elif choix is not None:
            size_rows.append({"method": "choix (skipped: >120 s at this size)", "seconds": float("nan"),
                              "peak_mib": float("nan"), "max_abs_diff": float("nan")})

        if evalica is not None and (n <= 10_000 or args.all):
            winners = [evalica.Winner.X if o == 1 else evalica.Winner.Y for o in outcome.tolist()]
            index = pd.Index(range(n))
            size_rows.append(run(
                "evalica bradley_terry (int)",
                lambda: np.log(evalica.bradley_terry(left, right, winners, index=index).scores.sort_index().to_numpy()),
                reference, repeat,
            ))
            size_rows.append(run(
                "evalica newman (int)",
                lambda: np.log(evalica.newman(left, right, winners, index=index).scores.sort_index().to_numpy()),
                reference, slow_repeat,
            ))
            size_rows.append(run(
                "evalica bradley_terry (strings)",
                lambda: np.log(evalica.bradley_terry(left_names, right_names, winners).scores.sort_index().to_numpy()),
                reference, repeat,
            ))
        elif evalica is not None:
            size_rows.append({"method": "evalica (skipped: dense n x n matrices, 80 GB)", "seconds": float("nan"),
                              "peak_mib": float("nan"), "max_abs_diff": float("nan")})

        if ArenaBT is not None and (n <= 10_000 or args.all):
            frame = pd.DataFrame({"model_a": left_names, "model_b": right_names,
                                  "winner": np.where(outcome == 1, "model_a", "model_b")})

            def arena() -> np.ndarray:
                dataset = PairDataset.from_pandas(frame)
                model = ArenaBT(n_competitors=len(dataset.competitors)).fit(dataset)
                return np.asarray(model.params["ratings"])

            size_rows.append(run("arena-rank BradleyTerry", arena, reference, 1))
        elif ArenaBT is not None:
            size_rows.append({"method": "arena-rank (skipped: minutes at this size)", "seconds": float("nan"),
                              "peak_mib": float("nan"), "max_abs_diff": float("nan")})

        base_time = size_rows[0]["seconds"]
        for r in size_rows:
            r.update(items=n, rows=m, ratio=r["seconds"] / base_time)
            rows.append(r)
            print(
                f"{n:>7,} items {m:>11,} rows  {r['method']:<42} {r['seconds']:9.3f} s  "
                f"x{r['ratio']:7.2f}  peak {r['peak_mib']:8.1f} MiB  max|diff| {r['max_abs_diff']:.2e}",
                flush=True,
            )
        truth = data["truth"] - data["truth"].mean()
        print(f"    (bradley vs true scores: corr {np.corrcoef(reference, truth)[0, 1]:.4f})", flush=True)

    table = pd.DataFrame(rows)[["items", "rows", "method", "seconds", "ratio", "peak_mib", "max_abs_diff"]]
    print()
    print(table.to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
