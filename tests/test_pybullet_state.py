"""PyBullet states (her/pybullet_state.py): a restored panda-gym env shows and continues its demo, within the
tolerance its docstring states."""

from __future__ import annotations

import numpy as np
import pytest

from her import env_state, pybullet_state
from her import experts as gen
from her.demo import demo_state
from her.envs import make_env

TASKS = [("PandaPickAndPlace-v3", 50), ("PandaStack-v3", 100)]
RESTORE_TOLERANCE = 1e-4  # metres: the replayed substep solves contacts cold (her/pybullet_state.py)


@pytest.fixture(scope="module", params=TASKS, ids=[t[0] for t in TASKS])
def demo(request):
    env_id, T = request.param
    return env_id, T, gen.generate(env_id, 1, seed=3).episodes


def test_the_backend_is_chosen_by_simulator():
    assert env_state.backend_for(make_env("PandaPush-v3", seed=0)) is pybullet_state
    from her import sim_state

    assert env_state.backend_for(make_env("FetchPush-v4", seed=0)) is sim_state
    assert not pybullet_state.accepts(make_env("FetchPush-v4", seed=0))


def test_restoring_each_state_and_stepping_follows_the_demo(demo):
    env_id, T, episodes = demo
    env = make_env(env_id, seed=12345)
    arrays = {key: value for key, value in episodes.items() if key.startswith("state/")}
    worst = 0.0
    for t in range(T):
        env.reset(seed=999)
        state, goal = demo_state(arrays, 0, t)
        obs = env_state.set_state(env, state, goal)
        # Positions as recorded: the end effector, the fingers, each cube, the achieved goal; the goal itself.
        np.testing.assert_allclose(obs["observation"][:3], episodes["o"][0, t, :3], atol=RESTORE_TOLERANCE)
        np.testing.assert_allclose(obs["achieved_goal"], episodes["ag"][0, t], atol=RESTORE_TOLERANCE)
        np.testing.assert_array_equal(obs["desired_goal"], episodes["g"][0, min(t, T - 1)])
        # get_state on the restored env gives the state back (a restored env can be recorded again).
        again = env_state.get_state(env)
        for key, value in state.items():
            np.testing.assert_array_equal(again[key], value, err_msg=key)
        obs, *_ = env.step(episodes["u"][0, t])
        worst = max(
            worst,
            np.abs(obs["achieved_goal"] - episodes["ag"][0, t + 1]).max(),
            np.abs(obs["observation"][:3] - episodes["o"][0, t + 1, :3]).max(),
        )
    assert worst < pybullet_state.STEP_TOLERANCE, worst


def test_a_state_of_another_scene_or_simulator_is_one_line(demo):
    env_id, T, episodes = demo
    state, goal = demo_state({k: v for k, v in episodes.items() if k.startswith("state/")}, 0, 5)
    same, other = make_env(env_id, seed=0), make_env("PandaReach-v3", seed=0)  # Reach: 3 bodies
    cases = [
        (same, {**state, "qpos": np.zeros(3)}, goal, "does not have: qpos"),
        (same, {**state, "replay_substeps": np.array([2.0])}, goal, "must be 0"),
        (same, state, np.zeros(7), "goal has shape"),
        (other, state, np.zeros(3), "another scene"),
    ]
    for env, bad, g, expected in cases:
        env.reset()
        with pytest.raises(ValueError, match=expected) as err:
            pybullet_state.set_state(env, bad, g)
        assert "\n" not in str(err.value)
