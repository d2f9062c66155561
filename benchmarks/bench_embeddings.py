"""Embedding throughput and what the cache saves, in one process.

Times, on texts of numbers written as words (bradley.probes.numbers_as_words):

* ``MiniLMEmbedder.encode`` (sentence embedding) and ``layer_embeddings``
  (all 7 layers) at a few batch sizes: texts per second;
* ``sentence-transformers`` encoding the same texts from the same packaged
  weights (only if importable), as the peer: the ratio is its time over ours;
* ``EmbeddingCache``: first call (encode + write) and second call (read only)
  on the same texts, and the ratio of the two;
* ``StubEmbedder`` (hashing) for scale.

Set ``OMP_NUM_THREADS`` to the cores you mean to use: torch and numpy each
start a thread pool. Run: ``python benchmarks/bench_embeddings.py [--n 1000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-sizes", default="16,64,256")
    args = parser.parse_args()

    from bradley.embeddings import EmbeddingCache, MiniLMEmbedder, StubEmbedder, minilm_model_dir
    from bradley.probes import numbers_as_words

    texts = numbers_as_words(args.n, high=99_999, seed=0)["text"].tolist()
    rows = []
    (emb, load_s) = timed(MiniLMEmbedder)
    print(f"MiniLMEmbedder load: {load_s:.2f} s")
    ours = {}
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        emb.batch_size = bs
        x, s = timed(emb.encode, texts)
        ours[bs] = (x, s)
        rows.append((f"MiniLM encode, batch {bs}", s))
        _, s = timed(emb.layer_embeddings, texts)
        rows.append((f"MiniLM layer_embeddings, batch {bs}", s))
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        SentenceTransformer = None
    if SentenceTransformer is not None:
        st = SentenceTransformer(str(minilm_model_dir()), device="cpu", local_files_only=True)
        for bs, (x, s_ours) in ours.items():
            y, s = timed(st.encode, texts, batch_size=bs, convert_to_numpy=True)
            rows.append((f"sentence-transformers encode, batch {bs} (ratio to ours {s / s_ours:.2f}; "
                         f"max |diff| {np.abs(x - y).max():.1e})", s))
    emb.batch_size = 64
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "c.sqlite", emb)
        _, first = timed(cache.encode, texts)
        _, second = timed(cache.encode, texts)
        rows.append(("EmbeddingCache first call (encode + write)", first))
        rows.append((f"EmbeddingCache second call (read; {first / second:.0f}x faster)", second))
    _, s = timed(StubEmbedder(256).encode, texts)
    rows.append(("StubEmbedder(256) encode", s))
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  seconds  texts/s   (n = {len(texts)})")
    for name, s in rows:
        print(f"{name:{width}}  {s:7.2f}  {len(texts) / s:8.0f}")


if __name__ == "__main__":
    main()
