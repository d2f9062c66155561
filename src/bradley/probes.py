"""BT probes on texts with a known order: data sets, item-disjoint splits, baselines.

A probe is honest only on items it never saw: :func:`item_split_pairs` draws
training pairs among training items and test pairs among the held-out items,
so a probe that memorised items scores at chance. :func:`probe_report` fits a
:class:`~bradley.models.features.BTProbe` on each feature set (an embedder's
output, one transformer layer, bag-of-words counts) and sets it beside the
baselines that need no features (chance, text length).

Text sets generated here (no files): :func:`numbers_as_words` ("three
thousand and twelve", ordered by value) and :func:`dates_as_words` ("the
fourth of March, nineteen eighty-seven", ordered by day).
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bradley.models.features import BTProbe, probe_layers

__all__ = [
    "PairSplit",
    "bag_of_words",
    "date_words",
    "dates_as_words",
    "item_split_pairs",
    "length_baseline",
    "number_words",
    "numbers_as_words",
    "probe_report",
    "rank_items",
]

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth"}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def _below_hundred(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    tens, unit = divmod(n, 10)
    return _TENS[tens] + (f"-{_UNITS[unit]}" if unit else "")


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_hundred(rest)
    head = f"{_UNITS[hundreds]} hundred"
    return head + (f" and {_below_hundred(rest)}" if rest else "")


def number_words(n: int) -> str:
    """British English words for ``0 <= n < 10**6`` ("and" after hundreds and before a last part below 100).

    Examples
    --------
    >>> number_words(312), number_words(4005), number_words(120017)
    ('three hundred and twelve', 'four thousand and five', 'one hundred and twenty thousand and seventeen')
    """
    n = int(n)
    if not 0 <= n < 10**6:
        raise ValueError(f"number_words covers 0 <= n < 1000000, got {n}.")
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _below_thousand(rest)
    head = f"{_below_thousand(thousands)} thousand"
    if not rest:
        return head
    return head + (" and " if rest < 100 else " ") + _below_thousand(rest)


def _ordinal_words(n: int) -> str:
    words = _below_hundred(n)
    parts = re.split(r"([ -])", words)
    last = parts[-1]
    if last in _ORDINAL:
        last = _ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return "".join(parts[:-1]) + last


def _year_words(year: int) -> str:
    century, rest = divmod(year, 100)
    if century % 10 == 0 and rest < 10:  # 2000-2009: "two thousand and five"
        return number_words(year)
    if rest == 0:
        return f"{_below_hundred(century)} hundred"
    return f"{_below_hundred(century)} " + (f"oh {_UNITS[rest]}" if rest < 10 else _below_hundred(rest))


def date_words(day: _dt.date) -> str:
    """A date read aloud in British style.

    Examples
    --------
    >>> date_words(_dt.date(1987, 3, 4)), date_words(_dt.date(2005, 12, 21))
    ('the fourth of March, nineteen eighty-seven', 'the twenty-first of December, two thousand and five')
    """
    return f"the {_ordinal_words(day.day)} of {_MONTHS[day.month - 1]}, {_year_words(day.year)}"


def numbers_as_words(n_items: int = 600, low: int = 1, high: int = 9999, seed: int = 0) -> pd.DataFrame:
    """``n_items`` distinct integers in ``[low, high]`` drawn at random, written as words.

    Returns a DataFrame with columns ``text`` and ``value`` (the order to recover).
    """
    rng = np.random.default_rng(seed)
    values = np.sort(rng.choice(np.arange(low, high + 1), size=n_items, replace=False))
    return pd.DataFrame({"text": [number_words(v) for v in values], "value": values.astype(np.float64)})


def dates_as_words(n_items: int = 600, start: str = "1900-01-01", end: str = "2029-12-31",
                   seed: int = 0) -> pd.DataFrame:
    """``n_items`` distinct days in ``[start, end]`` written as words; ``value`` is the day's ordinal."""
    first, last = _dt.date.fromisoformat(start).toordinal(), _dt.date.fromisoformat(end).toordinal()
    rng = np.random.default_rng(seed)
    days = np.sort(rng.choice(np.arange(first, last + 1), size=n_items, replace=False))
    return pd.DataFrame({"text": [date_words(_dt.date.fromordinal(int(d))) for d in days],
                         "value": days.astype(np.float64)})


@dataclass
class PairSplit:
    """Pairs of items (indices) with ``outcome`` 1 when ``left`` has the larger value.

    ``test`` marks the pairs among held-out items; ``test_items`` the held-out items.
    """

    left: np.ndarray
    right: np.ndarray
    outcome: np.ndarray
    test: np.ndarray
    test_items: np.ndarray


def item_split_pairs(values: Sequence[float] | np.ndarray, n_train_pairs: int = 4000, n_test_pairs: int = 2000,
                     test_fraction: float = 0.3, seed: int = 0) -> PairSplit:
    """Hold out a share of the items; draw train pairs among the rest and test pairs among them.

    Pairs of equal values are not drawn (the order is strict). Sides are
    random, so half the outcomes are 1.

    Examples
    --------
    >>> split = item_split_pairs(np.arange(50.0), 100, 40, seed=1)
    >>> train_items = set(split.left[~split.test]) | set(split.right[~split.test])
    >>> bool(train_items.isdisjoint(np.flatnonzero(split.test_items))), int(split.test.sum())
    (True, 40)
    """
    v = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    n = len(v)
    test_items = np.zeros(n, dtype=bool)
    test_items[rng.choice(n, size=max(2, int(round(test_fraction * n))), replace=False)] = True
    if (~test_items).sum() < 2:
        raise ValueError("too few items left for training: lower test_fraction or add items.")
    parts = []
    for pool, count in ((np.flatnonzero(~test_items), n_train_pairs), (np.flatnonzero(test_items), n_test_pairs)):
        left = np.empty(0, dtype=np.int64)
        right = np.empty(0, dtype=np.int64)
        while len(left) < count:
            a, b = rng.choice(pool, size=(2, 2 * count))
            keep = v[a] != v[b]
            left, right = np.concatenate([left, a[keep]]), np.concatenate([right, b[keep]])
        parts.append((left[:count], right[:count]))
    left = np.concatenate([parts[0][0], parts[1][0]])
    right = np.concatenate([parts[0][1], parts[1][1]])
    test = np.r_[np.zeros(n_train_pairs, dtype=bool), np.ones(n_test_pairs, dtype=bool)]
    return PairSplit(left, right, (v[left] > v[right]).astype(np.float64), test, test_items)


def length_baseline(texts: Sequence[str], split: PairSplit) -> float:
    """Test accuracy of "the longer text (in characters) has the larger value", or the shorter, whichever is
    better on the *training* pairs; equal lengths count half."""
    length = np.array([len(t) for t in texts], dtype=np.float64)
    sign = np.sign(length[split.left] - length[split.right])

    def accuracy(rows: np.ndarray, direction: float) -> float:
        s = direction * sign[rows]
        hit = np.where(s == 0, 0.5, (s > 0) == (split.outcome[rows] > 0.5))
        return float(np.mean(hit))

    direction = 1.0 if accuracy(~split.test, 1.0) >= accuracy(~split.test, -1.0) else -1.0
    return accuracy(split.test, direction)


def bag_of_words(texts: Sequence[str], fit_on: np.ndarray | None = None) -> np.ndarray:
    """Word counts (lower-cased, hyphens split), over the vocabulary of the ``fit_on`` texts (a boolean mask).

    Words only in other texts are dropped, as a model fitted on the
    training items would have to.

    Examples
    --------
    >>> bag_of_words(["one two two", "three"], fit_on=np.array([True, False]))
    array([[1., 2.],
           [0., 0.]])
    """
    tokens = [re.findall(r"[a-z]+", t.lower()) for t in texts]
    mask = np.ones(len(texts), dtype=bool) if fit_on is None else np.asarray(fit_on, dtype=bool)
    vocab = {w: k for k, w in enumerate(sorted({w for toks, m in zip(tokens, mask, strict=True) if m for w in toks}))}
    out = np.zeros((len(texts), len(vocab)))
    for row, toks in enumerate(tokens):
        for w in toks:
            if w in vocab:
                out[row, vocab[w]] += 1.0
    return out


def probe_report(
    texts: Sequence[str],
    split: PairSplit,
    features: Mapping[str, np.ndarray],
    l2: float | Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0),
    seed: int = 0,
    baselines: bool = True,
) -> pd.DataFrame:
    """Held-out pairwise accuracy of a BT probe per feature set, beside chance, length and bag-of-words.

    Parameters
    ----------
    texts : sequence of str
        The items (for the length and bag-of-words baselines).
    split : PairSplit
        From :func:`item_split_pairs`.
    features : mapping of name -> (n_items, dim) array
        One row per text: an embedder's ``encode`` or one of its layers.
    l2 : float or grid
        A grid is searched per feature set, item-disjoint too: fitted on
        pairs among three quarters of the training items, scored (log-loss)
        on pairs among the other quarter; the winner is refitted on all
        training pairs. With fewer than 10 pairs on either side of that
        split, it falls back to random training pairs and warns
        (``l2_search`` says which).

    Returns
    -------
    DataFrame
        ``method, l2, train_accuracy, test_accuracy, test_log_loss, n_test, l2_search``
        (``"item"``: the item-disjoint search; ``"pair"``: the fallback on
        random training pairs; ``"none"``: a single l2 given; empty for
        chance and length);
        the baselines ``chance`` (0.5 by construction) and ``length``, then
        ``bag_of_words`` (a BT probe on word counts of the training items'
        vocabulary), then one row per feature set.
    """
    outcome = split.outcome
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if baselines:
        train_items = np.zeros(len(texts), dtype=bool)
        train_items[split.left[~split.test]] = True
        train_items[split.right[~split.test]] = True
        bow = bag_of_words(texts, fit_on=train_items)
        sets["bag_of_words"] = (bow[split.left], bow[split.right])
    for name, x in features.items():
        x = np.asarray(x, np.float64)
        if x.shape[0] != len(texts):
            raise ValueError(f"features {name!r} have {x.shape[0]} rows for {len(texts)} texts.")
        sets[name] = (x[split.left], x[split.right])
    # l2 is chosen for unseen items too: validate on pairs among a quarter of the training items, fit on pairs
    # among the rest (mixed pairs sit out the search), then refit on every training pair
    rng = np.random.default_rng(seed)
    train_left, train_right = split.left[~split.test], split.right[~split.test]
    held_back = rng.random(len(texts)) < 0.25
    validation = held_back[train_left] & held_back[train_right]
    validation_fit = ~held_back[train_left] & ~held_back[train_right]
    search = "item"
    n_validation, n_validation_fit = int(validation.sum()), int(validation_fit.sum())
    grid_given = not isinstance(l2, (int, float)) and len(list(l2)) > 1
    if n_validation < 10 or n_validation_fit < 10:  # too few items for an item-level search
        validation, validation_fit, search = rng.random(len(train_left)) < 0.25, None, "pair"
        if grid_given:
            warnings.warn(f"probe_report: the item-disjoint l2 search has {n_validation} validation pairs and "
                          f"{n_validation_fit} fit pairs (fewer than 10); l2 is chosen on random training pairs "
                          "instead (l2_search='pair'), which favours memorising items. Add training pairs.",
                          UserWarning, stacklevel=2)
    table = probe_layers(sets, outcome, l2=l2, test=split.test, validation=validation,
                         validation_fit=validation_fit).rename(columns={"layer": "method"})
    table["l2_search"] = search if grid_given else "none"
    if baselines:
        n_test = int(split.test.sum())
        head = pd.DataFrame([
            {"method": "chance", "l2": np.nan, "train_accuracy": 0.5, "test_accuracy": 0.5,
             "test_log_loss": float(np.log(2)), "n_test": n_test},
            {"method": "length", "l2": np.nan, "train_accuracy": np.nan,
             "test_accuracy": length_baseline(texts, split), "test_log_loss": np.nan, "n_test": n_test},
        ])
        head["l2_search"] = None
        table = pd.concat([head, table], ignore_index=True)
    return table


def rank_items(probe: BTProbe, vectors: np.ndarray, names: Sequence[Any] | None = None) -> pd.DataFrame:
    """Items ordered by the probe's score (highest first): ``item, score, rank``."""
    s = probe.scores(vectors)
    order = np.argsort(-s, kind="stable")
    idx = np.arange(len(s)) if names is None else np.asarray(list(names), dtype=object)
    return pd.DataFrame({"item": idx[order], "score": s[order], "rank": np.arange(1, len(s) + 1)})

