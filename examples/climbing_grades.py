"""Bayesian inference of a climbing grade scale from simulated ascents (METHODS.md A9/A10).

Each ascent is a Bradley-Terry game between a climber and a route: the climber
"wins" by sending it. Route difficulties are regressed on their grade with a
hierarchical prior (routes scatter around their grade's level, the grade steps
are partially pooled around a common step), and climbers' strengths follow a
random walk in time. The data are simulated with a known difficulty ratio per
grade step (2.0: one grade up halves the odds of a send), which the posterior
should recover inside its 95% credible interval.

Run: ``python examples/climbing_grades.py [--quick]``
"""

import sys
import time
import warnings

from bradley.errors import ConvergenceWarning
from bradley.models.bayes import GradeScaleBT

quick = "--quick" in sys.argv
TRUE_RATIO = 2.0
size = (dict(n_climbers=20, n_routes=40, n_grades=5, n_periods=2, ascents_per_period=12) if quick
        else dict(n_climbers=60, n_routes=120, n_grades=8, n_periods=5, ascents_per_period=8))
ascents = GradeScaleBT.simulate(ratio=TRUE_RATIO, seed=7, **size)
print(f"{len(ascents)} ascents by {ascents['climber'].nunique()} climbers on {ascents['route'].nunique()} routes "
      f"of {ascents['grade'].nunique()} grades over {ascents['period'].nunique()} periods; "
      f"send rate {ascents['success'].mean():.2f}")

start = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", ConvergenceWarning)
    model = GradeScaleBT(draws=400 if quick else 800, warmup=400 if quick else 600, seed=0).fit(ascents)
for w in caught:
    print("note:", w.message)
print(f"NUTS: {time.perf_counter() - start:.1f} s, max R-hat {model.r_hat_max_:.3f}, min ESS {model.ess_min_:.0f}, "
      f"{model.divergences_} divergences")

ratio = model.step_ratio_
print(f"\ndifficulty ratio per grade step: {ratio['mean']:.2f} (sd {ratio['sd']:.2f}), "
      f"95% HDI [{ratio['hdi_low']:.2f}, {ratio['hdi_high']:.2f}]; true {TRUE_RATIO}")
print("\nper step (partially pooled):")
print(model.grade_steps_.round(2).to_string(index=False))
print("\nhyperparameters:")
print(model.params_.round(3).to_string())

first = model.climbers_[0]
print(f"\nstrength of {first} over time (true: {ascents.attrs['strength'][0].round(2).tolist()}):")
print(model.climber_history(first).round(2).to_string(index=False))

covered = ratio["hdi_low"] < TRUE_RATIO < ratio["hdi_high"]
print(f"\ntrue ratio inside the 95% credible interval: {covered}")
