"""Shared fixtures and helpers: a tiny goal env whose every number can be predicted by hand, a tiny DDPG, and
the configuration of a tiny FetchReach run.

Test modules import the helpers (``from conftest import tiny_ddpg``): pytest puts this folder on ``sys.path``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CountingGoalEnv(gym.Env):
    """observation = [steps taken, position], achieved goal = position (1-d), position += action[0].

    ``is_success`` is 1 only once exactly ``success_at`` steps have been taken, so a test can tell which
    step's info a worker read.
    """

    metadata = {"render_modes": []}

    def __init__(self, success_at: int = 5):
        self.observation_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
                "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (1,), np.float64),
                "desired_goal": gym.spaces.Box(-np.inf, np.inf, (1,), np.float64),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.success_at = success_at
        self.steps = 0
        self.total_steps = 0
        self.resets = 0
        self.pos = 0.0
        self.goal = 0.0

    def _obs(self):
        return {
            "observation": np.array([self.steps, self.pos]),
            "achieved_goal": np.array([self.pos]),
            "desired_goal": np.array([self.goal]),
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        self.resets += 1
        self.pos = 0.0
        self.goal = float(self.np_random.uniform(1.0, 2.0))
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        self.total_steps += 1
        self.pos += float(action[0])
        info = {"is_success": np.float32(self.steps == self.success_at)}
        obs = self._obs()
        return obs, float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)), False, False, info

    def compute_reward(self, achieved_goal, goal, info):
        return -(np.abs(achieved_goal - goal)[..., 0] > 0.05).astype(np.float32)


class ConstantPolicy:
    """Always the same action; records every call so tests can count forwards."""

    def __init__(self, dim_u: int, value: float = 0.1):
        self.dim_u = dim_u
        self.value = value
        self.calls: list[int] = []

    def get_actions(self, o, g, *, noise_eps=0.0, random_eps=0.0, rng=None, use_target_net=False, compute_Q=False):
        self.calls.append(len(o))
        u = np.full((len(o), self.dim_u), self.value, np.float32)
        return u, (np.full((len(o), 1), -1.0, np.float32) if compute_Q else None)


@pytest.fixture
def counting_envs():
    def make(n: int, T: int = 5):
        return [gym.wrappers.TimeLimit(CountingGoalEnv(success_at=T), max_episode_steps=T) for _ in range(n)]

    return make


# ---- a tiny learner ----

# Every DDPG constructor argument; tests override what they check.
DDPG_ARGS: dict[str, Any] = dict(
    hidden=3,
    layers=1,
    max_u=1.0,
    Q_lr=1e-3,
    pi_lr=1e-3,
    polyak=0.95,
    action_l2=1.0,
    clip_obs=200.0,
    norm_eps=0.01,
    norm_clip=5.0,
    gamma=0.98,
    clip_low=-50.0,
    seed=0,
)
TINY_DIMS = {"o": 2, "g": 1, "u": 2}  # CountingGoalEnv's


def tiny_ddpg(dims: Mapping[str, int] = TINY_DIMS, **overrides: Any):
    """A DDPG of ``DDPG_ARGS`` with ``overrides`` (hidden 3, one layer unless overridden)."""
    from her.ddpg import DDPG

    return DDPG(dims, **{**DDPG_ARGS, **overrides})


# ---- a tiny training run ----

# A FetchReach run of a few seconds per epoch; modules change what their checks depend on.
TINY_RUN: dict[str, Any] = {
    "env": "FetchReach",
    "n_cycles": 2,
    "n_batches": 4,
    "batch_size": 32,
    "hidden": 16,
    "layers": 1,
    "n_test_rollouts": 1,
    "num_env": 1,
    "seed": 3,
}


def tiny_run(**changes: Any) -> dict[str, Any]:
    """``TINY_RUN`` with ``changes``, as keys for ``build_config``."""
    return {**TINY_RUN, **changes}


def cli_args(values: Mapping[str, Any]) -> list[str]:
    """Configuration keys as command-line flags: ``["--env", "FetchReach", ...]`` (booleans as 0/1)."""
    return [
        item
        for key, value in values.items()
        for item in (f"--{key}", str(int(value)) if isinstance(value, bool) else str(value))
    ]


class BitsGoalEnv(gym.Env):
    """Bit flipping with continuous actions: each step sets bit i to ``action[i] > 0``; the goal is a random
    pattern of ``n`` bits and only an exact match is rewarded (0, else -1).

    Without relabelling a pattern is matched about once in 2**n steps, so plain DDPG sees no reward at all;
    with hindsight goals the mapping goal -> action signs is learnt in a few epochs (the HER paper's §4.1 point).
    """

    metadata = {"render_modes": []}

    def __init__(self, n: int = 8, render_mode: str | None = None):
        box = gym.spaces.Box(0.0, 1.0, (n,), np.float64)
        self.observation_space = gym.spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        self.n = n
        self.bits = np.zeros(n)
        self.goal = np.zeros(n)

    def _obs(self):
        return {"observation": self.bits.copy(), "achieved_goal": self.bits.copy(), "desired_goal": self.goal.copy()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.bits = self.np_random.integers(0, 2, self.n).astype(np.float64)
        self.goal = self.np_random.integers(0, 2, self.n).astype(np.float64)
        return self._obs(), {}

    def step(self, action):
        self.bits = (np.asarray(action) > 0).astype(np.float64)
        obs = self._obs()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None))
        return obs, reward, False, False, {"is_success": np.float32(reward == 0.0)}

    def compute_reward(self, achieved_goal, goal, info):
        return -np.any(achieved_goal != goal, axis=-1).astype(np.float32)


@pytest.fixture(scope="session")
def bits_env_id() -> str:
    """A registered id of BitsGoalEnv with 8 bits and T = 5, for runs through the trainer."""
    env_id = "TestBitsGoal-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point="conftest:BitsGoalEnv", max_episode_steps=5, kwargs={"n": 8})
    return env_id


def pytest_collection_modifyitems(config, items):
    # MPI jobs start several TensorFlow processes: `-m "not slow"` leaves them out too.
    for item in items:
        if item.get_closest_marker("mpi") is not None:
            item.add_marker(pytest.mark.slow)
