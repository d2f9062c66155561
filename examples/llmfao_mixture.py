"""Pluralistic preferences on the LLMFAO crowd data: do the 124 workers fall into camps?

Fits BT mixtures with K = 1..4 groups over workers (EM), picks K by 5-fold
held-out log-likelihood (split within workers), and shows how the groups'
rankings differ; then compares an ideal-point model (dim 1, 2) out of sample.
Data: /work/shared/data/llmfao/crowd-comparisons.csv (dustalov/llmfao, CC BY 4.0).
Run: .venv/bin/python examples/llmfao_mixture.py [path]   (about a minute on 2 cores)
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

import bradley
from bradley.models.mixture import BTMixture, IdealPointModel

path = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/llmfao/crowd-comparisons.csv")
data = bradley.read_comparisons(path, left="left", right="right", outcome="winner", annotator="worker")
workers = pd.Series(data.annotator).value_counts()
print(f"{data.n_comparisons} comparisons, {data.n_items} models, {len(workers)} workers "
      f"(median {int(workers.median())} comparisons each, ties {np.mean(data.outcome == 0.5):.0%})")

start = time.perf_counter()
table = BTMixture.select_k(data, ks=(1, 2, 3, 4), folds=5, n_init=5)
print(f"\nheld-out log-likelihood per comparison by K ({time.perf_counter() - start:.0f} s):")
print(table.drop(columns=["n_params"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"))

for k in (2, table.attrs["best_k"]) if table.attrs["best_k"] != 2 else (2,):
    model = BTMixture(n_groups=k, n_init=10).fit(data)
    sizes = model.labels_.value_counts().sort_index()
    confident = (model.responsibilities_.max(axis=1) > 0.9).mean()
    rows = pd.Series(model.labels_.loc[pd.Series(data.annotator)].to_numpy()).value_counts().sort_index()
    print(f"\nK = {k}: weights {np.round(model.weights_, 3).tolist()}, workers per group {sizes.tolist()} "
          f"({rows.tolist()} comparisons), "
          f"{confident:.0%} of workers placed with posterior > 0.9, converged={model.converged_} "
          f"({model.n_iter_} EM iterations)")
    one = bradley.BradleyTerry(prior=model.prior).fit(data)
    wide = model.rankings()
    wide["all"] = pd.Series(one.scores_, index=one.items_)
    for g in range(k):
        tau = kendalltau(wide[f"group_{g}"], wide["all"]).statistic
        print(f"  group {g}: Kendall tau with the one-BT ranking {tau:.2f}")
    if k >= 2:
        tau01 = kendalltau(wide["group_0"], wide["group_1"]).statistic
        print(f"  group 0 vs group 1: Kendall tau {tau01:.2f}")
        gap = (wide["group_0"] - wide["group_0"].mean()) - (wide["group_1"] - wide["group_1"].mean())
        shown = pd.concat([gap.nlargest(4), gap.nsmallest(4)])
        print("  largest disagreements (group_0 - group_1 score, centred):")
        print(shown.round(2).to_string())
    print("  top 5 per group:")
    for column in wide.columns:
        print(f"    {column}: {', '.join(wide[column].nlargest(5).index)}")

# ideal points against BT and the 2-group mixture on one 80/20 split of the rows
rng = np.random.default_rng(0)
codes = pd.factorize(pd.Series(data.annotator))[0]
test = rng.random(len(codes)) < 0.2
train, held = data.take(~test), data.take(test)
names = held.items
decisive = held.outcome != 0.5


def heldout(p: np.ndarray) -> tuple[float, float]:
    y = held.outcome
    ll = float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return ll, float(np.mean((p[decisive] > 0.5) == (y[decisive] > 0.5)))


bt = bradley.BradleyTerry(prior=10.0).fit(train)
print("\n80/20 split within workers: held-out log-likelihood per comparison, accuracy on decisive votes")
print(f"  BT                 {heldout(bt.predict_proba(names[held.left], names[held.right]))}")
for dim in (1, 2):
    ip = IdealPointModel(dim=dim, n_init=2).fit(train)
    known = pd.Index(ip.annotators_).get_indexer(held.annotator) >= 0
    p = np.where(known, ip.predict_proba(names[held.left], names[held.right],
                                         annotator=np.where(known, held.annotator, ip.annotators_[0])),
                 ip.predict_proba(names[held.left], names[held.right]))
    print(f"  ideal points d={dim}  {heldout(p)}  converged={ip.converged_}")
mix = BTMixture(n_groups=2, n_init=5).fit(train)
p_mix = mix.predict_proba(names[held.left], names[held.right], annotator=held.annotator)
print(f"  BT mixture K=2     {heldout(p_mix)}")
