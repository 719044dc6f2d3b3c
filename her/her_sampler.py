"""Hindsight relabelling (reference §7) with the goal-selection strategies of the HER paper (Andrychowicz et
al. 2017, §4.5), as a pure function of its inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

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


GRAVITY = 9.81  # m/s^2, for the potential energy of a unit mass


def trajectory_energy(ag: np.ndarray, dt: float, clip: float) -> np.ndarray:
    """Energy-based priority of episodes (Zhao and Tresp 2018), ``(n_ep,)`` from ``ag: (n_ep, T+1, 3k)``.

    The achieved goal is read as k points of unit mass (Fetch's objects). An episode's energy at step t >= 1 is
    the points' kinetic energy over the step plus their potential energy above where they started; the
    priority sums its increases, each clipped to ``[0, clip]``, so that a trajectory that moved the objects (the
    rare and informative one early in training) outweighs one that left them still or let them fall.
    """
    n_ep, steps, dim = ag.shape
    points = ag.reshape(n_ep, steps, dim // 3, 3).astype(np.float64)
    velocity = np.diff(points, axis=1) / dt
    kinetic = 0.5 * np.sum(velocity**2, axis=(2, 3))  # (n_ep, T)
    potential = GRAVITY * np.sum(points[:, 1:, :, 2] - points[:, :1, :, 2], axis=2)  # (n_ep, T)
    energy = kinetic + potential
    gained = np.diff(energy, axis=1, prepend=0.0)  # the first step's gain is its energy itself
    return np.clip(gained, 0.0, clip).sum(axis=1)


def energy_priority(dt: float, clip: float) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """Episodes ``{key: (n, T_key, dim)}`` -> their weights ``(n,)``: the trajectory energy, for a ReplayBuffer's
    ``priority``."""
    return lambda episodes: trajectory_energy(episodes["ag"], dt, clip)


def _energy(config: Any, dims: Mapping[str, int], goal_env: Any) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    if dims["g"] % 3:
        raise ValueError(
            f"--replay_priority energy reads achieved goals as 3-d positions, and {config.env_id}'s "
            f"have {dims['g']} dimensions: use --replay_priority uniform"
        )
    # gymnasium-robotics' envs give their step's length as dt, panda-gym's on their PyBullet simulation.
    dt = getattr(goal_env, "dt", None)
    if dt is None:
        dt = getattr(getattr(goal_env, "sim", None), "dt", None)
    if dt is None:
        raise ValueError(
            f"--replay_priority energy needs the length of {config.env_id}'s step (an env attribute "
            "dt), which it does not give: use --replay_priority uniform"
        )
    return energy_priority(float(dt), config.energy_clip)


class PriorityEntry(NamedTuple):
    """One way to weigh episodes for replay."""

    help: str  # for --help
    # (config, dims, goal env) -> episodes' weights for a ReplayBuffer's priority, or None for uniform draws;
    # ValueError if the env cannot be weighed so
    make: Callable[[Any, Mapping[str, int], Any], Callable[[Mapping[str, np.ndarray]], np.ndarray]] | None


# replay_priority -> how episodes are drawn for updates; her.config checks and explains the key from this table,
# her.parts builds the buffer's priority from it.
PRIORITIES: dict[str, PriorityEntry] = {
    "uniform": PriorityEntry("the reference", None),
    "energy": PriorityEntry(
        "in proportion to how much energy the achieved goal's objects gained (Zhao and Tresp "
        "2018; achieved goals of 3-d positions)",
        _energy,
    ),
}


def sample_her_transitions(
    episodes: Mapping[str, np.ndarray],
    batch_size: int,
    rng: np.random.Generator,
    *,
    relabel_p: float,
    reward_fn: RewardFn,
    strategy: str = "future",
    weights: np.ndarray | None = None,
    desired_share: float = 0.0,
) -> dict[str, np.ndarray]:
    """Draw ``batch_size`` transitions over episodes and steps, relabel a ``relabel_p`` fraction.

    ``episodes`` holds ``o, ag: (n_ep, T+1, dim)`` and ``u, g, info_*: (n_ep, T, dim)`` (decision D1).
    Episodes are drawn uniformly (the reference), or in proportion to ``weights: (n_ep,)`` (uniformly while
    they are all zero); steps uniformly.
    A relabelled row's goal is ``ag[ep, i]`` of its own episode, ``i`` chosen by ``STRATEGIES[strategy]``
    ('none' relabels no row whatever ``relabel_p``); a ``desired_share`` fraction of the relabelled rows takes
    instead the desired goal ``g`` of a transition drawn uniformly from all episodes (mrl's "actual" goals: goals
    the env really asks for, which the episode's own achieved goals may never come near). The reward is
    recomputed for every row.
    Returns ``o, u, g, ag, info_*, o_2, ag_2, r``, each ``(batch_size, dim)`` except ``r: (batch_size,)``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown replay strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    choose = STRATEGIES[strategy]
    n_episodes, T = episodes["u"].shape[:2]
    if weights is not None and (total := weights.sum()) > 0:
        ep = rng.choice(n_episodes, size=batch_size, p=weights / total)
    else:
        ep = rng.integers(0, n_episodes, size=batch_size)
    t = rng.integers(0, T, size=batch_size)
    batch = {key: value[ep, t] for key, value in episodes.items()}
    batch["o_2"] = episodes["o"][ep, t + 1]
    batch["ag_2"] = episodes["ag"][ep, t + 1]

    if choose is not None:
        relabel = rng.random(batch_size) < relabel_p
        goal_t = choose(t, T, rng)
        batch["g"][relabel] = episodes["ag"][ep[relabel], goal_t[relabel]]
        if desired_share > 0:  # no extra draws otherwise: the reference's batches stay as they were
            desired = relabel & (rng.random(batch_size) < desired_share)
            n = int(desired.sum())
            batch["g"][desired] = episodes["g"][rng.integers(0, n_episodes, size=n), rng.integers(0, T, size=n)]

    info = {key[len("info_") :]: value for key, value in batch.items() if key.startswith("info_")}
    batch["r"] = np.asarray(reward_fn(batch["ag_2"], batch["g"], info), dtype=np.float32).reshape(batch_size)
    return batch
