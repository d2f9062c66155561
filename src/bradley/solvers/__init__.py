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
from bradley.solvers.firth import firth, firth_penalized_log_likelihood
from bradley.solvers.quasi_variance import quasi_variances
from bradley.solvers.separation import design_null_space, find_separation, fitted_certificate

__all__ = [
    "DEFAULT_TOL",
    "SOLVERS",
    "SolverResult",
    "bt_gradient",
    "bt_log_likelihood",
    "bt_neg_hessian",
    "design_null_space",
    "find_separation",
    "firth",
    "firth_penalized_log_likelihood",
    "fitted_certificate",
    "lbfgs",
    "mm",
    "newman",
    "newton",
    "quasi_variances",
]
