"""RolloutWorker: steps a set of envs together for exactly T steps and returns the episodes (decision D1).

The one rollout loop of the project: training and evaluation, the scripted demo generator and ``--play`` all
run their episodes through it. What differs between them lives in three seams: the ``policy`` that picks the
actions, the ``starts`` hook that begins each env's episode (``her.starts``), and the ``after_step`` hook that
sees every env step (rendering, recording simulator states, summing rewards).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from her.envs import SUCCESS_KEYS, info_success
from her.errors import TrainingError
from her.starts import EnvReset, Starts


class ActingPolicy(Protocol):
    """What a worker acts with: the learner (her.learner), a loaded policy file (her.play), a scripted expert."""

    def get_actions(
        self,
        o: np.ndarray,
        g: np.ndarray,
        *,
        noise_eps: float,
        random_eps: float,
        rng: np.random.Generator | None,
        use_target_net: bool,
        compute_Q: bool,
    ) -> tuple[np.ndarray, np.ndarray | None]: ...


class AfterStep(Protocol):
    def __call__(self, t: int, env_index: int, env: gym.Env, result: tuple[Any, ...]) -> None: ...


class NonFiniteObservation(TrainingError):
    """An env returned NaN or infinity, usually a simulation that became unstable."""


class ObservationSizeError(TrainingError):
    """An env returned an observation of another size than its first (the goal-env contract's fixed sizes)."""


def _sized(value: Any, size: int, what: str, t: int) -> Any:
    # numpy would broadcast a 1-element array into the row, or fail with a message naming no env: check first.
    if np.shape(value) != (size,):
        raise ObservationSizeError(
            f"the env returned {what} of shape {np.shape(value)} at step {t} of an "
            f"episode, but of size {size} at its first reset: HER needs observations of one "
            "size throughout"
        )
    return value


class RolloutWorker:
    """Runs one episode in each of ``len(envs)`` envs per call, with one policy forward per step for all envs.

    Every episode is exactly ``T`` steps, and the stored final observation is the one the last step returned
    (never an auto-reset one). Success is ``info['is_success']`` (the mazes': ``info['success']``) after the last
    step. How each episode starts is ``starts``'s choice (``her.starts``: the env's own reset by default, or demo
    states), made with this worker's ``rng``; ``after_step(t, env_index, env, result)``, if given, receives what
    each ``env.step`` returned. New start strategies and per-step side jobs belong in those hooks, not in this loop.
    """

    def __init__(
        self,
        envs: Sequence[gym.Env],
        policy: ActingPolicy,
        dims: dict[str, int],
        T: int,
        *,
        rng: np.random.Generator | None = None,
        exploit: bool = False,
        use_target_net: bool = False,
        compute_Q: bool = False,
        noise_eps: float = 0.0,
        random_eps: float = 0.0,
        history_len: int = 100,
        starts: Starts | None = None,
        after_step: AfterStep | None = None,
    ):
        self.envs = list(envs)
        self.policy = policy
        self.dims = dims
        self.T = T
        self.rng = rng
        self.use_target_net = use_target_net
        self.compute_Q = compute_Q
        self.noise_eps = 0.0 if exploit else noise_eps
        self.random_eps = 0.0 if exploit else random_eps
        if (self.noise_eps > 0 or self.random_eps > 0) and rng is None:
            raise ValueError("an exploring RolloutWorker needs an rng")
        self.success_history: deque[float] = deque(maxlen=history_len)
        self.Q_history: deque[float] = deque(maxlen=history_len)
        # Other numbers the env reports in info after the last step (FetchStack's per-block ``placed``), by name.
        self.info_history: dict[str, deque[np.ndarray]] = {}
        self.history_len = history_len
        self.n_episodes = 0
        self.starts: Starts = starts if starts is not None else EnvReset()
        self.after_step = after_step

    def generate_rollouts(self) -> dict[str, np.ndarray]:
        """One episode per env: ``o, ag: (n, T+1, dim)``, ``u, g: (n, T, dim)``, ``info_is_success: (n, T, 1)``."""
        n, T, dims = len(self.envs), self.T, self.dims
        o = np.empty((n, T + 1, dims["o"]), np.float32)
        ag = np.empty((n, T + 1, dims["g"]), np.float32)
        g = np.empty((n, T, dims["g"]), np.float32)
        u = np.empty((n, T, dims["u"]), np.float32)
        success = np.empty((n, T, 1), np.float32)
        q_values = np.empty((n, T), np.float32) if self.compute_Q else None

        goal = np.empty((n, dims["g"]), np.float32)
        for i, env in enumerate(self.envs):
            obs = self.starts.start(i, env, self.rng)
            o[i, 0] = _sized(obs["observation"], dims["o"], "an observation", 0)
            ag[i, 0] = _sized(obs["achieved_goal"], dims["g"], "an achieved_goal", 0)
            goal[i] = _sized(obs["desired_goal"], dims["g"], "a desired_goal", 0)

        final_infos: list[dict[str, Any]] = [{} for _ in range(n)]
        for t in range(T):
            u[:, t], q = self.policy.get_actions(
                o[:, t],
                goal,
                noise_eps=self.noise_eps,
                random_eps=self.random_eps,
                rng=self.rng,
                use_target_net=self.use_target_net,
                compute_Q=self.compute_Q,
            )
            if q_values is not None:
                assert q is not None, "compute_Q asks the policy for Q-values"
                q_values[:, t] = q[:, 0]
            g[:, t] = goal
            for i, env in enumerate(self.envs):
                result = env.step(u[i, t])
                obs, info = result[0], result[4]
                if self.after_step is not None:
                    self.after_step(t, i, env, result)
                o[i, t + 1] = _sized(obs["observation"], dims["o"], "an observation", t + 1)
                ag[i, t + 1] = _sized(obs["achieved_goal"], dims["g"], "an achieved_goal", t + 1)
                success[i, t, 0] = info_success(info)
                final_infos[i] = info

        if not (np.isfinite(o).all() and np.isfinite(ag).all()):
            raise NonFiniteObservation("an env returned a non-finite observation; the simulation became unstable")
        self.success_history.append(float(success[:, -1, 0].mean()))
        for key, values in final_info_numbers(final_infos).items():
            self.info_history.setdefault(key, deque(maxlen=self.history_len)).append(values.mean(axis=0))
        if q_values is not None:
            self.Q_history.append(float(q_values.mean()))
        self.n_episodes += n
        return {"o": o, "ag": ag, "g": g, "u": u, "info_is_success": success}

    def clear_history(self) -> None:
        self.success_history.clear()
        self.Q_history.clear()
        for history in self.info_history.values():
            history.clear()

    def logs(self, prefix: str) -> dict[str, float]:
        logs = {f"{prefix}/success_rate": float(np.mean(self.success_history)) if self.success_history else 0.0}
        if self.compute_Q:
            logs[f"{prefix}/mean_Q"] = float(np.mean(self.Q_history)) if self.Q_history else 0.0
        logs[f"{prefix}/episode"] = float(self.n_episodes)
        for key, history in self.info_history.items():
            if not history:
                continue
            means = np.mean(history, axis=0)
            names = [key] if means.ndim == 0 else [f"{key}_{i}" for i in range(means.size)]
            logs.update((f"{prefix}/{name}", float(m)) for name, m in zip(names, np.ravel(means)))
        return logs


def final_info_numbers(infos: Sequence[dict[str, Any]], max_size: int = 8) -> dict[str, np.ndarray]:
    """The numbers every env reported in ``info`` after its last step, success aside: ``key -> (n, ...)``.

    Only small numeric values (at most ``max_size`` each) that every env reports alike; anything else is left out.
    """
    numbers: dict[str, np.ndarray] = {}
    for key in infos[0] if infos else ():
        if key in SUCCESS_KEYS:  # logged as the success rate
            continue
        try:
            values = np.stack([np.asarray(info[key], dtype=np.float64) for info in infos])
        except (KeyError, TypeError, ValueError):
            continue
        if values.ndim <= 2 and values[0].size <= max_size:
            numbers[key] = values
    return numbers
