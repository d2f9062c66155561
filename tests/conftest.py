import sys

import numpy as np
import pytest
from scipy import optimize
from scipy.special import log_expit


def brute_force_bt(left, right, outcome, n_items, weight=None, prior_variance=None):
    """Independent BT fit: the row-level likelihood written out here and maximised by scipy.

    Ties (0.5) and soft labels enter as the cross-entropy o*log p + (1-o)*log(1-p),
    which is the package's "tie = half a win each way" convention.
    """
    left = np.asarray(left)
    right = np.asarray(right)
    outcome = np.asarray(outcome, dtype=float)
    w = np.ones(len(left)) if weight is None else np.asarray(weight, dtype=float)

    def negloglik(free):
        theta = np.concatenate([[0.0], free]) if prior_variance is None else free
        d = theta[left] - theta[right]
        ll = np.sum(w * (outcome * log_expit(d) + (1 - outcome) * log_expit(-d)))
        if prior_variance is not None:
            ll -= 0.5 * np.sum(theta**2) / prior_variance
        return -ll

    x0 = np.zeros(n_items - 1 if prior_variance is None else n_items)
    res = optimize.minimize(negloglik, x0, method="BFGS", options={"gtol": 1e-10, "maxiter": 10_000})
    theta = np.concatenate([[0.0], res.x]) if prior_variance is None else res.x
    return theta - theta.mean(), -res.fun


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny torch models run far faster on one thread than on two contended ones (CI has 2 cores)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
