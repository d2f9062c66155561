"""BayesianBT on many rows: the likelihood runs on aggregated pairs, so rows cost only the aggregation.

Times a NUTS fit on 10k and 1M simulated BT games among the same 30 items
(same number of distinct pairs), in one process, and BradleyTerry(prior=1) as
the MAP baseline. Run: ``python benchmarks/bayes_scaling.py``
"""

import time

import numpy as np

import bradley
from bradley.models.bayes import BayesianBT

for rows in (10_000, 1_000_000):
    data, _ = bradley.simulate_bt(30, rows, seed=0)
    start = time.perf_counter()
    model = BayesianBT(prior_sd=1.0, draws=1000, warmup=500, seed=0).fit(data)
    took = time.perf_counter() - start
    bt = bradley.BradleyTerry(prior=1.0).fit(data)
    se = bt.standard_errors().to_numpy()
    print(f"{rows:>9} rows: NUTS fit {took:5.1f} s, R-hat max {model.r_hat_max_:.3f}, "
          f"|mean - MAP| / se max {np.max(np.abs(model.scores_ - bt.scores_) / se):.3f}, "
          f"sd / se in [{np.min(model.scores_sd_ / se):.3f}, {np.max(model.scores_sd_ / se):.3f}]")
