"""FetchStack: a goal env HER can train on, whose tower goal, success and batched reward mean what they say."""

from __future__ import annotations

import numpy as np
import pytest

from her import envs, fetch_obs
from her.fetch_stack import BLOCK

ENV_IDS = {2: "FetchStack2-v1", 3: "FetchStack3-v1"}


@pytest.fixture(scope="module")
def stack2():
    env = envs.make_env("FetchStack2-v1", seed=0)
    yield env
    env.close()


def test_registered_by_short_name_with_its_episode_length():
    assert envs.resolve_env_id("FetchStack2") == "FetchStack2-v1"
    assert envs.resolve_env_id("FetchStack3") == "FetchStack3-v1"
    assert envs.episode_length("FetchStack2-v1") == 100 and envs.episode_length("FetchStack3-v1") == 150
    assert envs.resolve_env_id("FetchStack2Dense-v1") == "FetchStack2Dense-v1"


@pytest.mark.parametrize("n", [2, 3])
def test_passes_the_goal_env_contract(n):
    env = envs.make_env(ENV_IDS[n], seed=0)
    assert envs.env_dims(env) == {"o": 10 + 15 * n, "g": 3 * n, "u": 4}
    # Its observation is its own: the cached upstream path must not be installed over it.
    assert not fetch_obs.install(env)


def test_observation_layout_and_tower_goal(stack2):
    obs, _ = stack2.reset(seed=3)
    o, ag, g = obs["observation"], obs["achieved_goal"], obs["desired_goal"]
    grip, pos, rel = o[0:3], o[3:9].reshape(2, 3), o[9:15].reshape(2, 3)
    np.testing.assert_array_equal(ag, pos.ravel())
    np.testing.assert_allclose(rel, pos - grip)
    tower = g.reshape(2, 3)
    np.testing.assert_allclose(tower[1] - tower[0], [0.0, 0.0, BLOCK])
    np.testing.assert_allclose(tower[0, 2], pos[:, 2], atol=1e-3)  # block 0's place is on the table


def test_blocks_start_apart_off_the_goal_and_on_the_table(stack2):
    table_lo, table_hi = np.array([1.05, 0.40]), np.array([1.55, 1.10])
    for seed in range(20):
        obs, _ = stack2.reset(seed=seed)
        pos, goal_xy = obs["achieved_goal"].reshape(2, 3)[:, :2], obs["desired_goal"][:2]
        assert np.linalg.norm(pos[0] - pos[1]) >= 0.1
        assert np.all(np.linalg.norm(pos - goal_xy, axis=1) >= 0.1)
        assert np.all((pos > table_lo) & (pos < table_hi))


def test_same_seed_same_start(stack2):
    a, _ = stack2.reset(seed=7)
    b, _ = stack2.reset(seed=7)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_success_needs_every_block_within_5cm(stack2):
    obs, _ = stack2.reset(seed=1)
    raw, g = stack2.unwrapped, obs["desired_goal"]
    assert raw.compute_reward(g, g, None) == 0.0 and raw._is_success(g, g) == 1.0
    off = g.copy()
    off[3] += 0.06  # block 1 (the top one) 6 cm off
    assert raw.compute_reward(off, g, None) == -1.0 and raw._is_success(off, g) == 0.0
    near = g.copy()
    near[[0, 4]] += 0.04  # both 4 cm off: still a tower
    assert raw.compute_reward(near, g, None) == 0.0


def test_compute_reward_is_vectorised_and_agrees_with_step(stack2):
    raw = stack2.unwrapped
    obs, _ = stack2.reset(seed=2)
    rng = np.random.default_rng(0)
    ags, gs, rewards = [], [], []
    for _ in range(5):
        obs, reward, _, _, info = stack2.step(rng.uniform(-1, 1, 4).astype(np.float32))
        assert raw.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == reward
        ags.append(obs["achieved_goal"])
        gs.append(obs["desired_goal"])
        rewards.append(reward)
    # HER relabels with goals achieved elsewhere: a batch mixing successes and failures, any leading shape.
    ag = np.concatenate([np.stack(ags), np.stack(gs)])
    g = np.concatenate([np.stack(gs), np.stack(gs)])
    batch = raw.compute_reward(ag, g, None)
    assert batch.shape == (10,) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, np.r_[rewards, np.zeros(5)])
    np.testing.assert_array_equal(
        raw.compute_reward(ag.reshape(2, 5, 6), g.reshape(2, 5, 6), None), batch.reshape(2, 5)
    )


def test_step_reward_counts_the_blocks_not_in_place_and_declares_its_range():
    env = envs.make_env("FetchStack2-v1", seed=0, env_kwargs={"reward_type": "step"})
    raw = env.unwrapped
    g = env.reset(seed=1)[0]["desired_goal"]
    one_off, both_off = g.copy(), g.copy()
    one_off[3] += 0.06  # the top block 6 cm off
    both_off[[0, 3]] += 0.06
    batch = raw.compute_reward(np.stack([g, one_off, both_off]), np.stack([g, g, g]), None)
    np.testing.assert_array_equal(batch, [0.0, -1.0, -2.0])
    assert raw.reward_range == (-2.0, 0.0) and envs.lowest_reward(env) == -2.0
    assert envs.lowest_reward(envs.make_env("FetchStack3-v1", env_kwargs={"reward_type": "step"})) == -3.0
    # The sparse task, Fetch's own tasks and an unbounded dense reward all bound targets by -1 per step.
    assert envs.lowest_reward(envs.make_env("FetchStack2-v1")) == -1.0
    assert envs.lowest_reward(envs.make_env("FetchStack2Dense-v1")) == -1.0
    assert envs.lowest_reward(envs.make_env("FetchPush-v4")) == -1.0


def test_an_unknown_reward_type_is_one_line():
    with pytest.raises(ValueError, match="reward_type must be one of sparse, step, dense, got 'steps'"):
        envs.make_env("FetchStack2-v1", env_kwargs={"reward_type": "steps"})


def test_info_says_which_blocks_are_placed_and_whether_the_gripper_is_clear(stack2):
    raw = stack2.unwrapped
    stack2.reset(seed=4)
    _, _, _, _, info = stack2.step(np.zeros(4, np.float32))
    np.testing.assert_array_equal(info["placed"], [0.0, 0.0])  # the blocks start 10 cm from the goal or more
    assert info["clear"] == 1.0 and info["standing"] == 0.0  # and 10 cm from under the gripper
    # Put the tower in place by hand, block 1 right at the gripper: placed, but the gripper is not clear.
    grip = raw._utils.get_site_xpos(raw.model, raw.data, "robot0:grip").copy()
    for i, place in enumerate(raw.goal.reshape(2, 3)):
        qpos = raw._utils.get_joint_qpos(raw.model, raw.data, f"object{i}:joint").copy()
        qpos[:3] = place if i == 0 else grip
        raw._utils.set_joint_qpos(raw.model, raw.data, f"object{i}:joint", qpos)
    raw.goal[3:] = grip  # the top block's place is where the gripper holds it
    raw._mujoco.mj_forward(raw.model, raw.data)
    _, _, _, _, info = stack2.step(np.zeros(4, np.float32))
    assert info["placed"][0] == 1.0 and info["placed"][1] == 1.0 and info["is_success"] == 1.0
    assert info["clear"] == 0.0 and info["standing"] == 0.0  # a held tower does not stand


def test_a_tower_let_go_of_is_standing(stack2):
    raw = stack2.unwrapped
    stack2.reset(seed=6)
    for i, place in enumerate(raw.goal.reshape(2, 3)):  # the tower built by hand, away from the gripper
        qpos = raw._utils.get_joint_qpos(raw.model, raw.data, f"object{i}:joint").copy()
        qpos[:3] = place
        raw._utils.set_joint_qpos(raw.model, raw.data, f"object{i}:joint", qpos)
    raw._mujoco.mj_forward(raw.model, raw.data)
    _, reward, _, _, info = stack2.step(np.zeros(4, np.float32))
    assert reward == 0.0 and info["is_success"] == 1.0
    assert info["clear"] == 1.0 and info["standing"] == 1.0
