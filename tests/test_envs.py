"""Task names and env construction: ids answered in one line, the info and reward conventions of goal-env families."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from her import envs
from her.config import build_config
from her.parts import make_learner


@pytest.mark.parametrize(
    "name, expected",
    [
        ("HandReach-v0", "HandReach-v0 needs the retired mujoco-py bindings: use HandReach-v3"),
        ("HandReach-v2", "HandReach-v2 is not a registered version: use HandReach-v3"),
        (
            "HandManipulateBlock-v0",
            "HandManipulateBlock-v0 needs the retired mujoco-py bindings: use HandManipulateBlock-v1",
        ),
        ("PointMaze_UMaze-v1", "PointMaze_UMaze-v1 is not a registered version: use PointMaze_UMaze-v3"),
        (
            "FetchPush-v1",
            "FetchPush-v1 needs the retired mujoco-py bindings: use FetchPush-v4 (FetchPush for short), "
            "the version this project trains",
        ),
    ],
)
def test_retired_and_unknown_versions_name_the_current_id(name, expected):
    with pytest.raises(ValueError) as info:
        envs.resolve_env_id(name)
    assert str(info.value) == expected


@pytest.mark.parametrize("env_id", ["HandReach-v3", "PointMaze_UMaze-v3", "FetchStack2-v1"])
def test_current_ids_of_each_family_resolve_to_themselves(env_id):
    assert envs.resolve_env_id(env_id) == env_id


def test_a_maze_env_passes_the_goal_env_check_and_rewards_success_with_1():
    env = envs.make_env("PointMaze_UMaze-v3", seed=0)
    dims = envs.env_dims(env)  # the goal-env check: it needs is_success, or success as the mazes say, after a step
    assert dims == {"o": 4, "g": 2, "u": 2}
    assert envs.success_reward(env) == 1.0 and envs.success_reward(envs.make_env("FetchReach-v4", seed=0)) == 0.0


def test_the_critic_bound_above_is_what_a_return_can_gain():
    config = build_config({"env": "FetchReach"})  # gamma 0.98
    dims = {"o": 10, "g": 3, "u": 4}
    assert make_learner(config, dims).clip_high == 0.0  # Fetch's -1/0 reward: the reference's bound
    assert make_learner(config, dims, success_reward=1.0).clip_high == pytest.approx(50.0)
    unclipped = build_config({"env": "FetchReach", "clip_return": False})
    assert make_learner(unclipped, dims, success_reward=1.0).clip_high == np.inf


def test_an_env_with_neither_is_success_nor_success_is_refused():
    class NoSuccess(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated, truncated, {}

    with pytest.raises(ValueError, match="has no 'is_success' \\(nor 'success'\\)"):
        envs.env_dims(NoSuccess(envs.make_env("FetchReach-v4", seed=0)))


def test_a_step_s_success_is_read_from_either_key_is_success_first():
    from her.envs import info_success

    assert info_success({"is_success": 1.0}) == 1.0
    assert info_success({"success": True}) == 1.0  # the mazes'
    assert info_success({"is_success": 0.0, "success": True}) == 0.0
