"""Out-of-core aggregation: DuckDB (bradley.aggregate) vs polars streaming vs the in-memory path.

Generates an arena-like Parquet file (model_a, model_b, winner, category) in /tmp,
then runs each engine in a fresh subprocess and reports wall time and peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process), plus the BT fit
on the resulting pair counts.

    .venv/bin/python benchmarks/bench_aggregate.py --rows 10_000_000 --items 1000
    .venv/bin/python benchmarks/bench_aggregate.py --rows 10_000_000 --items 100000 --engines duckdb

The whole 100M x 100k job (aggregate + fit, peak RSS, total) in one command; the file
/tmp/bradley_bench_100000000_100000.parquet is generated once and reused:

    .venv/bin/python benchmarks/bench_aggregate.py --rows 100_000_000 --items 100000 --engines arrow

Weighted sources: ``--weights`` adds a float64 ``weight`` column (gamma, 5% zeros; found by name), e.g.

    .venv/bin/python benchmarks/bench_aggregate.py --rows 10_000_000 --items 1000 --weights --engines arrow

``load_1min`` is the 1-minute load average at the start and the end of each child (the machine is shared:
report it next to the figures).

Before/after a change: ``--baseline DIR`` runs each engine a second time with ``DIR`` (a folder holding an
older ``bradley`` package, e.g. ``git worktree add /tmp/old HEAD~3`` then ``/tmp/old/src``) first on
``PYTHONPATH``, right before the current code, on the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def generate(path: str, rows: int, items: int, seed: int = 0, chunk: int = 5_000_000, weights: bool = False) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = pa.array([f"model-{k:06d}" for k in range(items)])
    strength = rng.normal(0, 1, items)
    writer = None
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        a = rng.integers(0, items, m)
        b = (a + rng.integers(1, items, m)) % items
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        u = rng.random(m)
        winner = np.where(u < 0.08, 2, np.where(rng.random(m) < p, 0, 1))
        labels = pa.array(["model_a", "model_b", "tie"])
        table = pa.table({
            "model_a": pa.DictionaryArray.from_arrays(pa.array(a.astype(np.int32)), names),
            "model_b": pa.DictionaryArray.from_arrays(pa.array(b.astype(np.int32)), names),
            "winner": pa.DictionaryArray.from_arrays(pa.array(winner.astype(np.int32)), labels),
            "category": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 4, m).astype(np.int32)),
                                                       pa.array(["math", "code", "chat", "other"])),
        })
        if weights:  # float64 frequency weights, about 5% of them 0
            w = rng.gamma(2.0, 0.5, m)
            w[rng.random(m) < 0.05] = 0.0
            table = table.append_column("weight", pa.array(w))
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=1_000_000)
    assert writer is not None
    writer.close()


def run_engine(engine: str, path: str, where: str | None) -> dict:
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    if engine in ("duckdb", "arrow"):
        from bradley.aggregate import aggregate

        pairs = aggregate(path, where=where, engine=engine)
    elif engine == "polars":  # the alternative engine: polars streaming group-by, then the same validation
        import polars as pl

        from bradley.aggregate import ROWS_COLUMN, pair_counts_from_partial

        frame = pl.scan_parquet(path)
        if where:
            frame = frame.filter(pl.col("category") == "math")
        partial = (frame.group_by(["model_a", "model_b", "winner"])
                   .agg(pl.len().cast(pl.Int64).alias(ROWS_COLUMN)).collect(engine="streaming").to_pandas())
        for c in ("model_a", "model_b", "winner"):
            partial[c] = partial[c].astype(object)
        pairs = pair_counts_from_partial(partial)
    elif engine == "memory":
        import bradley

        pairs = bradley.read_comparisons(path, where=where).pair_counts()
    else:
        raise SystemExit(f"unknown engine {engine}")
    t1 = time.perf_counter()
    aggregate_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak before the fit
    import bradley

    model = bradley.BradleyTerry().fit(pairs)
    t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {"engine": engine, "aggregate_s": round(t1 - t0, 2), "fit_s": round(t2 - t1, 2),
            "total_s": round(t2 - t0, 2),
            "aggregate_peak_rss_mib": round(aggregate_rss), "peak_rss_mib": round(rss),
            "pairs": pairs.n_pairs, "items": pairs.n_items,
            "games": float(pairs.totals.sum()), "converged": bool(model.converged_),
            "n_iter": int(model.n_iter_), "solver": model.solver_,
            "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "checksum": float(np.round(model.scores_[:3], 6).sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--engines", default="arrow,duckdb,polars,memory")
    parser.add_argument("--where", default=None)
    parser.add_argument("--child", default=None)
    parser.add_argument("--path", default=None)
    parser.add_argument("--baseline", default=None, help="folder holding an older bradley package to compare")
    parser.add_argument("--weights", action="store_true", help="add a float64 'weight' column (5%% zeros)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_engine(args.child, args.path, args.where)))
        return
    path = args.path or f"/tmp/bradley_bench_{args.rows}_{args.items}{'_w' if args.weights else ''}.parquet"
    if not os.path.exists(path):
        t0 = time.perf_counter()
        generate(path, args.rows, args.items, weights=args.weights)
        print(f"generated {path} ({os.path.getsize(path) / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s")
    versions = [("baseline", args.baseline), ("current", None)] if args.baseline else [("current", None)]
    for engine in args.engines.split(","):
        for version, folder in versions:
            cmd = [sys.executable, __file__, "--child", engine, "--path", path]
            if args.where:
                cmd += ["--where", args.where]
            env = dict(os.environ)
            if folder:
                env["PYTHONPATH"] = folder + os.pathsep + env.get("PYTHONPATH", "")
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                print(engine, version, "failed:", out.stderr.strip().splitlines()[-1:])
                continue
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["rows"] = args.rows
            result["code"] = version
            print(json.dumps(result))


if __name__ == "__main__":
    main()
