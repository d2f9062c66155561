"""BLAS threading for small dense linear algebra.

Small solves (tens to a few hundred unknowns) gain nothing from BLAS
threads, and OpenBLAS threads that spin while another process keeps the
cores busy can stall each call for 0.1 s or more. Kernels wrap their small
dense solves in :func:`single_blas_thread`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["single_blas_thread", "SMALL_SYSTEM"]

#: Dense systems up to this many unknowns are solved with one BLAS thread.
SMALL_SYSTEM = 500

_controller: Any = None


@contextlib.contextmanager
def single_blas_thread(size: int = 0) -> Iterator[None]:
    """Limit BLAS to one thread inside the block when ``size <= SMALL_SYSTEM``.

    Examples
    --------
    >>> import numpy as np
    >>> with single_blas_thread(3):
    ...     x = np.linalg.solve(np.eye(3), np.ones(3))
    >>> x.tolist()
    [1.0, 1.0, 1.0]
    """
    global _controller
    if size > SMALL_SYSTEM:
        yield
        return
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        yield
