"""Plackett-Luce for k-wise rankings, fitted by Hunter's MM or Newton."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, sparse
from scipy.special import expit

from bradley.data import mle_existence_problem
from bradley.errors import ConvergenceWarning
from bradley.models.base import ItemIndex, check_prior, require_fitted
from bradley.rankings import UNRANKED, Rankings, break_rankings

__all__ = ["PlackettLuce", "plackett_luce_log_likelihood"]


@dataclass
class _Stages:
    """Choice stages: at each distinct level of a ranking, the tied group chosen from those left."""

    member_stage: np.ndarray  # stage of each (stage, item-in-choice-set) entry
    member_item: np.ndarray
    chosen_stage: np.ndarray
    chosen_item: np.ndarray
    stage_weight: np.ndarray  # ranking weight x size of the chosen group (Breslow ties)
    chosen_weight: np.ndarray
    n_stages: int


def _stages(r: Rankings) -> _Stages:
    frame = pd.DataFrame({"r": r.ranking, "i": r.item, "l": r.level})
    levels = frame[frame.l != UNRANKED].groupby(["r", "l"], sort=True).size().reset_index(name="size")
    # a ranking whose last ranked level is followed by nothing gives a stage choosing from itself only;
    # that stage carries no information (its probability is 1) and is dropped
    levels["stage"] = np.arange(len(levels))
    members = levels[["r", "l", "stage", "size"]].merge(frame, on="r", suffixes=("", "_item"))
    members = members[members.l_item >= members.l]
    set_size = members.groupby("stage")["i"].transform("size")
    informative = set_size > members["size"]
    members = members[informative]
    keep_stages = np.unique(members.stage.to_numpy())
    remap = np.full(len(levels), -1)
    remap[keep_stages] = np.arange(len(keep_stages))
    levels = levels[np.isin(levels.stage.to_numpy(), keep_stages)]
    chosen = levels[["r", "l", "stage"]].merge(frame, on=["r", "l"])
    stage_w = r.weight[levels.r.to_numpy()] * levels["size"].to_numpy()
    return _Stages(
        remap[members.stage.to_numpy()], members.i.to_numpy(np.int64),
        remap[chosen.stage.to_numpy()], chosen.i.to_numpy(np.int64),
        stage_w.astype(np.float64), r.weight[chosen.r.to_numpy()].astype(np.float64), len(keep_stages),
    )


def _stage_log_normalisers(theta: np.ndarray, st: _Stages) -> np.ndarray:
    t = theta[st.member_item]
    top = np.full(st.n_stages, -np.inf)
    np.maximum.at(top, st.member_stage, t)
    sums = np.bincount(st.member_stage, np.exp(t - top[st.member_stage]), st.n_stages)
    return top + np.log(sums)


def plackett_luce_log_likelihood(scores: np.ndarray, rankings: Rankings) -> float:
    """Plackett-Luce log-likelihood (ties by Breslow's approximation: each tied item
    is chosen from the same set), weighted by ranking weights."""
    st = _stages(rankings)
    return _loglik(np.asarray(scores, float), st)


def _loglik(theta: np.ndarray, st: _Stages) -> float:
    return float(st.chosen_weight @ theta[st.chosen_item] - st.stage_weight @ _stage_log_normalisers(theta, st))


def _gradient_and_probs(theta: np.ndarray, st: _Stages, n: int) -> tuple[np.ndarray, np.ndarray]:
    log_norm = _stage_log_normalisers(theta, st)
    prob = np.exp(theta[st.member_item] - log_norm[st.member_stage])  # choice probability within the stage
    expected = np.bincount(st.member_item, st.stage_weight[st.member_stage] * prob, n)
    wins = np.bincount(st.chosen_item, st.chosen_weight, n)
    return wins - expected, prob


class PlackettLuce:
    """Plackett-Luce model for full, partial (top-k) and tied rankings.

    ``P(ranking) = prod_stages exp(s_chosen) / sum_{k in remaining} exp(s_k)``.
    Ties use Breslow's approximation (each item of a tied group is chosen from
    the same remaining set); items present but unranked stay in every choice
    set and are never chosen (top-k rankings).

    Parameters
    ----------
    solver : {"newton", "mm"}
        Newton with the exact Hessian, or Hunter's (2004) MM algorithm.
    prior : float, optional
        Gaussian prior variance on the scores (MAP; Newton only).
    tol, max_iter
        Convergence on the largest one-item Newton step ``|g_i| / I_ii``.

    Examples
    --------
    >>> r = Rankings.from_orderings([["a", "b", "c"], ["a", "c", "b"], ["b", "a", "c"], ["c", "b", "a"]])
    >>> m = PlackettLuce().fit(r)
    >>> m.converged_, m.items_[np.argmax(m.scores_)]
    (True, 'a')
    """

    def __init__(self, solver: str = "newton", prior: float | None = None, tol: float = 1e-9, max_iter: int | None = None):
        self.solver = solver
        self.prior = prior
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, rankings: Rankings) -> "PlackettLuce":
        if not isinstance(rankings, Rankings):
            raise TypeError("PlackettLuce.fit takes Rankings (see bradley.read_rankings).")
        if self.solver not in ("newton", "mm"):
            raise ValueError(f"solver must be 'newton' or 'mm', got {self.solver!r}.")
        check_prior(self.prior)
        if self.solver == "mm" and self.prior is not None:
            raise ValueError("the MM solver fits the MLE; use solver='newton' with a prior.")
        n = rankings.n_items
        st = _stages(rankings)
        if self.prior is None:
            # The PL MLE exists iff the "ranked above" graph is strongly connected (Hunter 2004);
            # it is the win graph of the fully broken rankings.
            problem = mle_existence_problem(break_rankings(rankings).pair_counts())
            if problem is not None:
                raise problem
        precision = 0.0 if self.prior is None else 1.0 / self.prior
        wins = np.bincount(st.chosen_item, st.chosen_weight, n)
        theta = np.log(wins + 0.5)
        theta -= theta.mean()
        max_iter = self.max_iter or (100 if self.solver == "newton" else 100_000)
        it = 0
        for it in range(1, max_iter + 1):
            grad, prob = _gradient_and_probs(theta, st, n)
            grad = grad - precision * theta
            w = st.stage_weight[st.member_stage]
            diag = np.bincount(st.member_item, w * prob * (1 - prob), n) + precision
            if np.max(np.abs(grad) / np.maximum(diag, 1e-300)) <= self.tol:
                it -= 1
                break
            if self.solver == "mm":
                # Hunter (2004): gamma_i <- W_i / sum_stages w_s [i in R_s] / sum_{k in R_s} gamma_k
                log_norm = _stage_log_normalisers(theta, st)
                denom = np.bincount(st.member_item, st.stage_weight[st.member_stage] * np.exp(-log_norm[st.member_stage]), n)
                theta = np.log(wins) - np.log(denom)
            else:
                info = self._information(theta, st, n, prob) + precision * np.eye(n)
                if precision == 0.0:
                    info += 1.0 / n
                step = linalg.solve(info, grad, assume_a="pos")
                objective = _loglik(theta, st) - 0.5 * precision * theta @ theta
                t = 1.0
                while t > 1e-8:
                    cand = theta + t * step
                    if _loglik(cand, st) - 0.5 * precision * cand @ cand >= objective + 1e-4 * t * (grad @ step) - 1e-12 * abs(objective):
                        break
                    t *= 0.5
                theta = theta + t * step
            theta -= theta.mean()
        grad, prob = _gradient_and_probs(theta, st, n)
        grad = grad - precision * theta
        w = st.stage_weight[st.member_stage]
        diag = np.bincount(st.member_item, w * prob * (1 - prob), n) + precision
        info = self._information(theta, st, n, prob) + precision * np.eye(n)
        cov = np.linalg.inv(info + 1.0 / n) - 1.0 / n if precision == 0.0 else np.linalg.inv(info)

        self.items_ = np.asarray(rankings.items, dtype=object)
        self._index = ItemIndex(self.items_)
        self.scores_ = theta
        self.scores_se_ = np.sqrt(np.clip(np.diag(cov), 0, None))
        self.covariance_ = cov
        self.log_likelihood_ = _loglik(theta, st)
        self.n_iter_ = it
        self.converged_ = bool(np.max(np.abs(grad) / np.maximum(diag, 1e-300)) <= self.tol)
        self.solver_ = self.solver
        self.n_rankings_ = rankings.n_rankings
        self.first_place_ = pd.Series(np.bincount(rankings.item[rankings.level == 1], minlength=n), index=self.items_)
        if not self.converged_:
            warnings.warn(f"PlackettLuce ({self.solver}) stopped after {it} iterations without meeting tol={self.tol:g}.",
                          ConvergenceWarning, stacklevel=2)
        return self

    @staticmethod
    def _information(theta: np.ndarray, st: _Stages, n: int, prob: np.ndarray) -> np.ndarray:
        w = st.stage_weight[st.member_stage]
        # sum over stages of w_s (diag(p_s) - p_s p_s^T), the outer products through a sparse product
        s = sparse.csr_matrix((np.sqrt(w) * prob, (st.member_stage, st.member_item)), shape=(st.n_stages, n))
        outer = (s.T @ s).toarray()
        return np.diag(np.bincount(st.member_item, w * prob, n)) - outer

    def predict_proba(self, left: Any, right: Any) -> np.ndarray:
        """Probability that ``left`` is ranked above ``right`` in a pair (``expit(s_l - s_r)``)."""
        require_fitted(self)
        return expit(self.scores_[self._index.codes(left)] - self.scores_[self._index.codes(right)])

    def summary(self) -> pd.DataFrame:
        """item, score, se, rank, first_place (rankings won); best first. Scores are mean zero."""
        require_fitted(self)
        table = pd.DataFrame({"item": self.items_, "score": self.scores_, "se": self.scores_se_})
        table["rank"] = pd.Series(-self.scores_).rank(method="min").astype(np.int64).to_numpy()
        table["first_place"] = self.first_place_.to_numpy()
        table = table.sort_values("rank", kind="stable").reset_index(drop=True)
        table.attrs["identifiability"] = "scores centred to mean zero (SEs under that constraint)"
        return table

