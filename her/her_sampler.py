"""Hindsight relabelling (reference §7) with the goal-selection strategies of the HER paper (Andrychowicz et
al. 2017, §4.5), as a pure function of its inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

RewardFn = Callable[[np.ndarray, np.ndarray, dict], np.ndarray]
# (t: (n,) steps of the sampled transitions, T, rng) -> (n,) indices into ag[ep] of the goals to substitute.
GoalIndex = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def future_index(t: np.ndarray, T: int, rng: np.random.Generator) -> np.ndarray:
    """A strictly later step of the episode: uniform in ``[t+1, T]`` (the reference's only strategy)."""
    return t + 1 + (rng.random(t.shape) * (T - t)).astype(np.int64)


def final_index(t: np.ndarray, T: int, rng: np.random.Generator) -> np.ndarray:
    """The episode's last achieved goal, ``ag[T]``."""
    return np.full(t.shape, T, dtype=np.int64)


def episode_index(t: np.ndarray, T: int, rng: np.random.Generator) -> np.ndarray:
    """Any achieved goal the episode's steps reached: uniform in ``[1, T]``, regardless of ``t``."""
    # ag[0] is left out as in 'future': it is where the episode started, not a goal any action achieved.
    return 1 + (rng.random(t.shape) * T).astype(np.int64)


# replay_strategy -> goal selection; 'none' relabels nothing (plain DDPG).
STRATEGIES: dict[str, GoalIndex | None] = {
    "future": future_index,
    "final": final_index,
    "episode": episode_index,
    "none": None,
}


def sample_her_transitions(
    episodes: Mapping[str, np.ndarray],
    batch_size: int,
    rng: np.random.Generator,
    *,
    future_p: float,
    reward_fn: RewardFn,
    strategy: str = "future",
) -> dict[str, np.ndarray]:
    """Draw ``batch_size`` transitions uniformly over episodes and steps, relabel a ``future_p`` fraction.

    ``episodes`` holds ``o, ag: (n_ep, T+1, dim)`` and ``u, g, info_*: (n_ep, T, dim)`` (decision D1).
    A relabelled row's goal is ``ag[ep, i]`` of its own episode, ``i`` chosen by ``STRATEGIES[strategy]``
    ('none' relabels no row whatever ``future_p``); the reward is recomputed for every row.
    Returns ``o, u, g, ag, info_*, o_2, ag_2, r``, each ``(batch_size, dim)`` except ``r: (batch_size,)``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown replay strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    choose = STRATEGIES[strategy]
    n_episodes, T = episodes["u"].shape[:2]
    ep = rng.integers(0, n_episodes, size=batch_size)
    t = rng.integers(0, T, size=batch_size)
    batch = {key: value[ep, t] for key, value in episodes.items()}
    batch["o_2"] = episodes["o"][ep, t + 1]
    batch["ag_2"] = episodes["ag"][ep, t + 1]

    if choose is not None:
        relabel = rng.random(batch_size) < future_p
        goal_t = choose(t, T, rng)
        batch["g"][relabel] = episodes["ag"][ep[relabel], goal_t[relabel]]

    info = {key[len("info_") :]: value for key, value in batch.items() if key.startswith("info_")}
    batch["r"] = np.asarray(reward_fn(batch["ag_2"], batch["g"], info), dtype=np.float32).reshape(batch_size)
    return batch
