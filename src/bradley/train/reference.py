"""The reference policy of offline preference optimisation, and its log-probs cached on disk.

Three ways to have ``log pi_ref(y | x)``, chosen by :class:`~bradley.train.PreferenceTrainer`:

* a frozen reference model (eval mode, no gradients; a deep copy of the
  initial policy by default) run next to the policy at every step;
* the adapter-disabled base model when the policy is a PEFT (LoRA) adapter:
  :func:`adapter_disabled` switches the adapters off for the reference pass,
  so no second copy of the weights is held;
* reference log-probs computed **once** before training and cached on disk
  (:func:`cached_reference_logprobs`): the per-token log-probs of every
  response token are stored as a column of the tokenised dataset, in a file
  whose name is a fingerprint of the reference weights and of the token ids
  (:func:`model_fingerprint`, :func:`data_fingerprint`). The next run with the
  same model and data finds the file and never calls the reference model.

Per-token values (not only sums) are cached so that every loss can be fed
from the cache: summed, length-normalised, LD-DPO-weighted, per-turn (DMPO)
and k-wise log-probs are all derived from them. They are stored in float64,
so a float32 or float64 model's values round-trip exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

__all__ = [
    "CACHE_COLUMN",
    "adapter_disabled",
    "cached_reference_logprobs",
    "data_fingerprint",
    "model_fingerprint",
    "scatter_cached",
]

logger = logging.getLogger(__name__)

#: Dataset column holding the cached reference log-probs of a row's response tokens (one list per response).
CACHE_COLUMN = "ref_response_token_logps"

# Bumped when the cached layout changes, so old files are not misread.
_CACHE_VERSION = "1"


def model_fingerprint(model: torch.nn.Module, *, skip: Callable[[str], bool] | None = None) -> str:
    """SHA-256 of a model's class, config and every parameter and buffer (names, dtypes, shapes, bytes).

    ``skip(name)`` leaves out tensors by name (e.g. LoRA adapter weights when
    the reference is the adapter-disabled base). Hashing reads every weight
    once: about a second per GB.

    Examples
    --------
    >>> import torch
    >>> a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    >>> model_fingerprint(a) == model_fingerprint(a), model_fingerprint(a) == model_fingerprint(b)
    (True, False)
    """
    digest = hashlib.sha256()
    digest.update(type(model).__name__.encode())
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        digest.update(config.to_json_string(use_diff=False).encode())
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, tensor in tensors:
        if skip is not None and skip(name):
            continue
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{data.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def data_fingerprint(dataset: Any, columns: Sequence[str]) -> str:
    """SHA-256 of the given integer (or list-of-int) columns of a ``datasets.Dataset``, in row order.

    Examples
    --------
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"prompt_ids": [[1, 2], [3]], "chosen_ids": [[4], [5, 6]]})
    >>> data_fingerprint(ds, ["prompt_ids"]) == data_fingerprint(ds.select([0, 1]), ["prompt_ids"])
    True
    >>> data_fingerprint(ds, ["prompt_ids"]) == data_fingerprint(ds.select([1, 0]), ["prompt_ids"])
    False
    """
    import pyarrow as pa

    digest = hashlib.sha256()
    table = dataset.with_format("arrow")[:]
    for name in columns:
        column = table.column(name).combine_chunks()
        digest.update(f"{name}:{len(column)}".encode())
        # Flatten nested lists level by level, hashing each level's lengths so [[1], [2, 3]] != [[1, 2], [3]].
        while pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            lengths = column.value_lengths().fill_null(-1)
            digest.update(lengths.to_numpy(zero_copy_only=False).tobytes())
            column = column.flatten()
        digest.update(column.to_numpy(zero_copy_only=False).tobytes())
    return digest.hexdigest()


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "disable_adapter")


@contextlib.contextmanager
def adapter_disabled(model: Any) -> Iterator[Any]:
    """Context in which a PEFT model computes as its base model (adapters off); yields the model.

    Examples
    --------
    >>> import torch
    >>> with adapter_disabled(torch.nn.Linear(2, 2)):
    ...     pass
    Traceback (most recent call last):
    ...
    TypeError: adapter_disabled needs a PEFT model (with peft_config and disable_adapter()), got Linear.
    """
    if not _is_peft(model):
        raise TypeError(
            f"adapter_disabled needs a PEFT model (with peft_config and disable_adapter()), got {type(model).__name__}."
        )
    with model.disable_adapter():
        yield model


def scatter_cached(
    values: Sequence[Sequence[float]], completion_mask: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Per-token log-probs ``(R, T-1)`` (the ``bradley.nn.logprobs`` layout) from cached per-response lists.

    ``values[r]`` holds the log-probs of row ``r``'s response tokens in order
    (``completion_mask[r].sum()`` of them); position ``t`` of the result scores
    token ``t + 1``, zero off the response.

    Examples
    --------
    >>> import torch
    >>> mask = torch.tensor([[0, 1, 1], [0, 1, 0]])
    >>> scatter_cached([[-1.0, -2.0], [-3.0]], mask, torch.float64).tolist()
    [[-1.0, -2.0], [-3.0, 0.0]]
    """
    keep = completion_mask.bool()
    counts = keep.sum(-1).tolist()
    for r, (row, n) in enumerate(zip(values, counts, strict=True)):
        if len(row) != n:
            raise ValueError(
                f"cached reference log-probs of row {r} have {len(row)} tokens but its completion_mask has {n}; "
                f"the cache does not belong to this tokenisation (delete it or change cache_dir)."
            )
    flat = torch.tensor([v for row in values for v in row], dtype=torch.float64)
    full = torch.zeros(keep.shape, dtype=torch.float64, device="cpu")
    full[keep.cpu()] = flat
    return full[:, 1:].to(device=completion_mask.device, dtype=dtype)


def cached_reference_logprobs(
    dataset: Any,
    compute: Callable[[Any], list[list[list[float]]]],
    *,
    cache_dir: str | os.PathLike[str],
    fingerprint: str,
    batch_size: int = 8,
) -> tuple[Any, bool]:
    """The dataset with :data:`CACHE_COLUMN` added, read from ``cache_dir`` or computed once and written there.

    Parameters
    ----------
    dataset : datasets.Dataset
        Tokenised rows.
    compute : callable
        ``compute(rows)`` for a list of up to ``batch_size`` rows (dicts)
        returns, per row, one list of per-token log-probs per response.
    cache_dir : path
        Folder of the cache files (created when missing).
    fingerprint : str
        Key of the reference model and the data (see :func:`model_fingerprint`,
        :func:`data_fingerprint`); the file is ``reference-<fingerprint>``.
    batch_size : int
        Rows per call of ``compute``.

    Returns
    -------
    (datasets.Dataset, bool)
        The dataset with the column, and whether it was read from the cache
        (True) rather than computed.

    Examples
    --------
    >>> import tempfile
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"x": [1, 2, 3]})
    >>> calls = []
    >>> def compute(rows):
    ...     calls.append(len(rows))
    ...     return [[[float(r["x"])]] for r in rows]
    >>> folder = tempfile.mkdtemp()
    >>> out, hit = cached_reference_logprobs(ds, compute, cache_dir=folder, fingerprint="abc", batch_size=2)
    >>> list(out[CACHE_COLUMN]), hit, calls
    ([[[1.0]], [[2.0]], [[3.0]]], False, [2, 1])
    >>> out, hit = cached_reference_logprobs(ds, compute, cache_dir=folder, fingerprint="abc")
    >>> hit, calls
    (True, [2, 1])
    """
    from datasets import Dataset, concatenate_datasets, load_from_disk

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    path = os.path.join(os.fspath(cache_dir), f"reference-v{_CACHE_VERSION}-{fingerprint}")
    if CACHE_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(CACHE_COLUMN)
    if os.path.isdir(path):
        cached = load_from_disk(path)
        if len(cached) == len(dataset):
            logger.info("reference log-probs read from %s", path)
            return concatenate_datasets([dataset, cached], axis=1), True
        logger.warning("ignoring %s: %d rows for a dataset of %d", path, len(cached), len(dataset))
    values: list[list[list[float]]] = []
    for start in range(0, len(dataset), batch_size):
        rows = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        values.extend(compute(rows))
    cached = Dataset.from_dict({CACHE_COLUMN: values})
    os.makedirs(os.fspath(cache_dir), exist_ok=True)
    # Write to a temporary name first, so an interrupted run leaves no half-written cache behind.
    partial = f"{path}.partial-{os.getpid()}"
    cached.save_to_disk(partial)
    if os.path.isdir(path):  # another process won the race; keep its file
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
    else:
        os.replace(partial, path)
    logger.info("reference log-probs of %d rows cached in %s", len(dataset), path)
    return concatenate_datasets([dataset, load_from_disk(path)], axis=1), False
