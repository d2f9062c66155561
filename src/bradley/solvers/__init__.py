"""Pure numerical kernels: arrays (or PairCounts) in, arrays out.

No classes with state, no I/O. Estimators in :mod:`bradley.models` choose a
kernel and keep the fitted state.
"""

from bradley.solvers.bt import (
    DEFAULT_TOL,
    SOLVERS,
    SolverResult,
    bt_gradient,
    bt_log_likelihood,
    bt_neg_hessian,
    lbfgs,
    mm,
    newman,
    newton,
)

__all__ = [
    "DEFAULT_TOL",
    "SOLVERS",
    "SolverResult",
    "bt_gradient",
    "bt_log_likelihood",
    "bt_neg_hessian",
    "lbfgs",
    "mm",
    "newman",
    "newton",
]
