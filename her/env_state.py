"""An env's full state as flat float64 arrays, captured and restored through the env (demo-state resets).

One interface, one backend per simulator: ``her.sim_state`` for gymnasium-robotics' MuJoCo envs and
``her.pybullet_state`` for panda-gym's PyBullet envs. A backend is a module with ``accepts(env)``,
``track(env)`` (called before the reset of an episode whose states will be read), ``get_state(env) -> {name:
array}`` and ``set_state(env, state, goal) -> obs`` (called right after a reset). Demo files store the arrays as
``state/<name>`` beside ``state/goal``; a new simulator is one module and one entry of ``BACKENDS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import gymnasium as gym
import numpy as np

# Module names, imported only when asked: a MuJoCo run never imports PyBullet, and the reverse.
BACKENDS = ("her.sim_state", "her.pybullet_state")


def backend_for(env: gym.Env) -> ModuleType:
    """The backend that can save and restore ``env``; ValueError (one line) if none can."""
    for name in BACKENDS:
        module = importlib.import_module(name)
        if module.accepts(env):
            return module
    env_name = env.spec.id if env.spec else type(env.unwrapped).__name__
    raise ValueError(
        f"{env_name}: no state backend can save and restore this env (her.env_state.BACKENDS knows "
        f"gymnasium-robotics' MuJoCo envs and panda-gym's PyBullet envs), so demo-state resets "
        f"and demo files with states are not available for it"
    )


def track(env: gym.Env) -> None:
    backend_for(env).track(env)


def get_state(env: gym.Env) -> dict[str, np.ndarray]:
    return backend_for(env).get_state(env)


def set_state(env: gym.Env, state: dict[str, np.ndarray], goal: np.ndarray) -> dict[str, np.ndarray]:
    return backend_for(env).set_state(env, state, goal)


def get_goal(env: gym.Env) -> np.ndarray:
    """The env's goal in float64 (panda-gym keeps it on its task, Fetch on the env)."""
    raw = env.unwrapped
    goal = raw.task.goal if hasattr(raw, "task") and hasattr(raw.task, "goal") else raw.goal  # type: ignore[attr-defined]
    return np.array(goal, dtype=np.float64)
