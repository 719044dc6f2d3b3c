"""Scripted demonstrations for any goal env (reference §15, decision D11), written as plain arrays.

**The expert interface.** An expert is a callable from one observation dict (``observation``, ``achieved_goal``,
``desired_goal``, as the env returns it) to an action inside the env's action space; or a class whose instances
are such callables, made afresh for every episode (for experts that keep a phase). ``EXPERTS`` maps a Fetch task to
its expert (``her/fetch_experts.py``), panda-gym's table is in ``her/panda_experts.py``, and ``expert_for`` reads
both; ``her-demos --expert module:callable`` takes a user's own for any goal env (``examples/reach_expert.py``). Every
episode runs exactly T steps from ``env.reset(seed=episode_seed(seed, i))``, so the same command writes the same
file; where a ``her.env_state`` backend knows the env (MuJoCo, PyBullet), the file also holds the simulator
state of every observation, for resets to demonstration states. ``her-demos`` is ``her/demos_cli.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from her.fetch_experts import EXPERTS

Expert = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def all_experts() -> dict[str, Expert | type]:
    """Every task's scripted expert: ``EXPERTS`` and panda-gym's."""
    from her.panda_experts import EXPERTS as PANDA

    return {**EXPERTS, **PANDA}


def load_expert(spec: str) -> Expert | type:
    """``module:callable`` -> the user's expert (the module is imported: the user named it on the command line)."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--expert {spec!r}: give it as module:callable, e.g. examples.reach_expert:expert")
    try:
        found = getattr(importlib.import_module(module), name)
    except Exception as e:  # noqa: BLE001 - any failure of the user's module is one line
        raise ValueError(
            f"--expert {spec}: cannot load it ({type(e).__name__}: {e}); check the module is on "
            f"PYTHONPATH and defines {name}"
        ) from None
    if not callable(found):
        raise ValueError(f"--expert {spec} is a {type(found).__name__}, not a function or class")
    return found


def expert_for(env_id: str) -> Expert | type:
    """The scripted expert of ``env_id``'s task (any version, dense reward or not); see ``EXPERTS``."""
    from her.envs import base_task

    task = base_task(env_id)
    experts = all_experts()
    if task not in experts:
        raise ValueError(
            f"no scripted expert for {env_id}: use one of {', '.join(experts)}, or your own "
            f"controller with --expert module:callable"
        )
    return experts[task]


# ---- generation ----


def episode_seed(seed: int, i: int) -> int:
    """Reset seed of episode ``i``: independent streams per episode, and no overlap between nearby --seed values."""
    return int(np.random.SeedSequence(seed, spawn_key=(i,)).generate_state(1)[0])


class ExpertEpisode:
    """One scripted episode as ``RolloutWorker`` runs it: the expert is its policy, a seeded reset its start,
    and after each step it records the simulator state (``her.sim_state``) and the env's goal."""

    def __init__(self, expert: Expert | type, seed: int, T: int, noise: float = 0.0):
        self.expert = expert() if isinstance(expert, type) else expert  # a fresh one: no phase leaks in
        self.seed, self.T, self.noise = seed, T, noise
        self.noise_rng = np.random.default_rng(seed)
        from her.demo import EpisodeStates

        self.states = EpisodeStates()
        self.no_states = ""  # why this env's states cannot be recorded, if they cannot
        self.obs: dict[str, np.ndarray] = {}  # the env's latest observation, in its own float64

    def start(self, env_index: int, env, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        try:
            self.states.track(env)  # before the reset: get_state must see inside every step of the episode
        except ValueError as err:  # no her.env_state backend knows this env: demos without states
            self.no_states = str(err)
        self.obs, _ = env.reset(seed=self.seed)
        self._record(env)
        return self.obs

    def _record(self, env) -> None:
        if not self.no_states:
            self.states.record(env)

    def get_actions(self, o: np.ndarray, g: np.ndarray, **_) -> tuple[np.ndarray, None]:
        """The expert's action for the one env, ``(1, dim_u)``: noisy if asked, clipped, float32 (as executed).

        The expert reads the env's own observation rather than ``o``, the worker's float32 copy of it, so that
        its arithmetic (and so every demo file) is the same as when it drove the env directly.
        """
        u = np.asarray(self.expert(self.obs), dtype=np.float32)
        if self.noise > 0:
            u = u + self.noise * self.noise_rng.standard_normal(u.shape).astype(np.float32)
        return np.clip(u, -1.0, 1.0)[None], None

    def after_step(self, t: int, env_index: int, env, result: tuple) -> None:
        # terminated is ignored, as in training: panda-gym reports it on reaching the goal, and HER's episodes
        # run T steps whatever happens (success is read after the last).
        self.obs, truncated = result[0], result[3]
        if truncated and t < self.T - 1:
            raise RuntimeError(f"{env.spec.id} was truncated after {t + 1} steps, before T={self.T}")
        self._record(env)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """``state/<name>: (T+1, size)`` and ``state/goal: (T+1, dim_g)``, float64; {} without states."""
        return {} if self.no_states else self.states.arrays()


def run_episode(
    env, expert: Expert | type, seed: int, T: int, noise: float = 0.0
) -> tuple[dict[str, np.ndarray], bool]:
    """One episode of exactly T steps in the replay layout (D1); success is info['is_success'] after the last.

    ``expert`` is an entry of ``EXPERTS``: a class is instantiated afresh, so no phase leaks between episodes.
    With the episode, the simulator state of every observation, ``state/<name>: (T+1, size)`` float64
    (``her.sim_state``), and the env's goal, ``state/goal: (T+1, dim_g)``. ``noise`` adds Gaussian noise of
    that standard deviation to the expert's actions (a weaker expert).
    """
    from her.rollout import RolloutWorker

    episode = ExpertEpisode(expert, seed, T, noise)
    space = env.observation_space
    dims = {"o": space["observation"].shape[0], "g": space["desired_goal"].shape[0], "u": env.action_space.shape[0]}
    worker = RolloutWorker([env], episode, dims, T, starts=episode, after_step=episode.after_step)
    ep = {key: value[0] for key, value in worker.generate_rollouts().items()}  # (T or T+1, dim)
    ep.update(episode.state_arrays())
    return ep, bool(ep["info_is_success"][-1, 0])


class Generated(NamedTuple):
    episodes: dict[str, np.ndarray]  # {key: (E, T_key, dim)}, float32; state/ keys (E, T+1, size) float64
    successes: int  # among the kept episodes
    attempts: int  # episodes run (more than kept with only_success)
    no_states: str = ""  # why the episodes hold no simulator states (no her.env_state backend for the env)


class GenerationError(RuntimeError):
    """only_success could not collect enough successful episodes within the allowed attempts."""


def generate(
    env_id: str,
    num_episodes: int,
    seed: int = 0,
    *,
    only_success: bool = False,
    max_attempts: int | None = None,
    noise: float = 0.0,
    expert: Expert | type | None = None,
) -> Generated:
    """Run ``expert`` (default: the task's, ``expert_for``) for ``num_episodes`` episodes (successful ones
    only, if ``only_success``)."""
    from her.env_state import backend_for
    from her.envs import episode_length, make_env

    if num_episodes < 1:
        raise ValueError(f"num_episodes must be at least 1, got {num_episodes}")
    expert = expert if expert is not None else expert_for(env_id)
    T = episode_length(env_id)
    max_attempts = num_episodes if not only_success else (max_attempts or 10 * num_episodes)
    env = make_env(env_id)
    try:
        no_states = ""
        try:
            backend_for(env)
        except ValueError as err:
            no_states = str(err)
        kept: list[dict[str, np.ndarray]] = []
        successes = attempts = 0
        while len(kept) < num_episodes and attempts < max_attempts:
            episode, success = run_episode(env, expert, episode_seed(seed, attempts), T, noise)
            attempts += 1
            successes += success
            if success or not only_success:
                kept.append(episode)
    finally:
        env.close()
    if len(kept) < num_episodes:
        raise GenerationError(
            f"only {len(kept)} of {attempts} episodes of {env_id} succeeded, short of the {num_episodes} "
            f"asked for: lower --num_episodes, raise --max_attempts, or drop --only_success"
        )
    episodes = {key: np.stack([ep[key] for ep in kept]) for key in kept[0]}
    return Generated(episodes, int(episodes["info_is_success"][:, -1, 0].sum()), attempts, no_states)


if __name__ == "__main__":  # python -m her.experts, as before the command line had its own module
    import sys

    from her.demos_cli import main

    sys.exit(main())
