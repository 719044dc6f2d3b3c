"""Running mean / std of observations or goals (reference §8, decision D6)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Reduce = Callable[[np.ndarray], np.ndarray]


def _identity(x: np.ndarray) -> np.ndarray:
    return x


class Normalizer:
    """Accumulates sums locally; ``recompute_stats`` pools them with ``reduce`` and refreshes mean and std.

    It only keeps statistics: the networks normalise and clip with them (``her.ddpg``, ``her.numpy_actor``).

    ``reduce`` averages an array over MPI processes (the identity on one). Averaging sums and counts alike
    gives the pooled mean. As in the reference the count starts at 1, so the first statistics are shrunk a
    little towards mean 0; the variance is floored at ``eps**2``. Accumulation is float64 (D6).
    """

    def __init__(self, size: int, eps: float = 1e-2, reduce: Reduce = _identity):
        self.size = size
        self.eps = eps
        self.reduce = reduce
        self.sum = np.zeros(size)
        self.sumsq = np.zeros(size)
        self.count = 1.0
        self._local_sum = np.zeros(size)
        self._local_sumsq = np.zeros(size)
        self._local_count = 0.0
        self.mean = np.zeros(size)
        self.std = np.ones(size)

    def update(self, v: np.ndarray) -> None:
        """Add samples ``v: (..., size)`` to the local sums."""
        v = np.asarray(v, dtype=np.float64).reshape(-1, self.size)
        self._local_sum += v.sum(axis=0)
        self._local_sumsq += np.square(v).sum(axis=0)
        self._local_count += v.shape[0]

    def recompute_stats(self) -> None:
        # One reduce call for all three quantities keeps every rank's collectives in the same order.
        local = np.concatenate([self._local_sum, self._local_sumsq, [self._local_count]])
        pooled = self.reduce(local)
        self._local_sum[:] = 0.0
        self._local_sumsq[:] = 0.0
        self._local_count = 0.0
        self.sum += pooled[: self.size]
        self.sumsq += pooled[self.size : 2 * self.size]
        self.count += float(pooled[-1])
        self.mean = self.sum / self.count
        self.std = np.sqrt(np.maximum(self.eps**2, self.sumsq / self.count - np.square(self.mean)))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"sum": self.sum.copy(), "sumsq": self.sumsq.copy(), "count": np.array(self.count)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if np.shape(state["sum"]) != (self.size,):
            raise ValueError(f"normaliser size {np.shape(state['sum'])} does not match {self.size}")
        self.sum = np.array(state["sum"], dtype=np.float64)
        self.sumsq = np.array(state["sumsq"], dtype=np.float64)
        self.count = float(state["count"])
        self.mean = self.sum / self.count
        self.std = np.sqrt(np.maximum(self.eps**2, self.sumsq / self.count - np.square(self.mean)))
