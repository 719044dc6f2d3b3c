"""Hindsight relabelling with the 'future' strategy (reference §7), as a pure function of its inputs."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

RewardFn = Callable[[np.ndarray, np.ndarray, dict], np.ndarray]


def sample_her_transitions(
    episodes: Mapping[str, np.ndarray],
    batch_size: int,
    rng: np.random.Generator,
    *,
    future_p: float,
    reward_fn: RewardFn,
) -> dict[str, np.ndarray]:
    """Draw ``batch_size`` transitions uniformly over episodes and steps, relabel a ``future_p`` fraction.

    ``episodes`` holds ``o, ag: (n_ep, T+1, dim)`` and ``u, g, info_*: (n_ep, T, dim)`` (decision D1).
    A relabelled goal is the achieved goal of a strictly later step of the same episode,
    ``ag[ep, t']`` with ``t'`` uniform in ``[t+1, T]``; the reward is recomputed for every row.
    Returns ``o, u, g, ag, info_*, o_2, ag_2, r``, each ``(batch_size, dim)`` except ``r: (batch_size,)``.
    """
    n_episodes, T = episodes["u"].shape[:2]
    ep = rng.integers(0, n_episodes, size=batch_size)
    t = rng.integers(0, T, size=batch_size)
    batch = {key: value[ep, t] for key, value in episodes.items()}
    batch["o_2"] = episodes["o"][ep, t + 1]
    batch["ag_2"] = episodes["ag"][ep, t + 1]

    relabel = rng.random(batch_size) < future_p
    future_t = t + 1 + (rng.random(batch_size) * (T - t)).astype(np.int64)
    batch["g"][relabel] = episodes["ag"][ep[relabel], future_t[relabel]]

    info = {key[len("info_") :]: value for key, value in batch.items() if key.startswith("info_")}
    batch["r"] = np.asarray(reward_fn(batch["ag_2"], batch["g"], info), dtype=np.float32).reshape(batch_size)
    return batch
