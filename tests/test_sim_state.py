"""Simulator states (her.sim_state): a fresh env restored from a demo file continues the demo bit for bit."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from her import experts as gen
from her import sim_state
from her.demo import demo_state, load_demos, save_demos
from her.envs import env_dims, make_env

T = 50
E, STEP = 3, 17  # episode 3, step 17: neither a reset state nor the last one
TASKS = ["FetchPickAndPlace-v4", "FetchPush-v4", "FetchReach-v4"]


@pytest.fixture(scope="module", params=TASKS)
def demo_file(request, tmp_path_factory):
    """(env_id, demos with states): 4 generated episodes written to a v2 file and loaded back."""
    env_id = request.param
    path = tmp_path_factory.mktemp("demos") / "demos.npz"
    save_demos(path, gen.generate(env_id, E + 1, seed=0).episodes, env_id)
    dims = env_dims(make_env(env_id, seed=0))
    return env_id, load_demos(path, env_id=env_id, dims=dims, T=T, num_demo=E + 1, need_states=True)


def fresh_env(env_id: str) -> gym.Env:
    """An env seeded unlike the generator's, reset: what a demo-state reset starts from."""
    env = make_env(env_id, seed=12345)
    env.reset(seed=999)
    return env


def f32(obs: dict) -> dict:
    return {key: np.asarray(value, dtype=np.float32) for key, value in obs.items()}


def test_restored_env_shows_the_stored_observation_and_continues_the_demo(demo_file):
    env_id, demos = demo_file
    env = fresh_env(env_id)
    state, goal = demo_state(demos, E, STEP)
    obs = f32(sim_state.set_state(env, state, goal))
    np.testing.assert_array_equal(obs["observation"], demos["o"][E, STEP])
    np.testing.assert_array_equal(obs["achieved_goal"], demos["ag"][E, STEP])
    np.testing.assert_array_equal(obs["desired_goal"], demos["g"][E, STEP])
    np.testing.assert_array_equal(env.unwrapped.goal, goal)  # the float64 goal, not g's float32 rounding
    # The demo's own actions from there reproduce the rest of the demo, and the time limit counts T steps
    # from the restore (the caller reset the env just before it).
    for t in range(STEP, T):
        obs, _, terminated, truncated, info = env.step(demos["u"][E, t])
        obs = f32(obs)
        np.testing.assert_array_equal(obs["observation"], demos["o"][E, t + 1], err_msg=f"step {t}")
        np.testing.assert_array_equal(obs["achieved_goal"], demos["ag"][E, t + 1])
        assert info["is_success"] == demos["info_is_success"][E, t, 0]
        assert not terminated and not truncated
    for _ in range(STEP - 1):  # T - STEP steps taken; STEP more make T
        assert not env.step(np.zeros(4, np.float32))[3]
    assert env.step(np.zeros(4, np.float32))[3]  # truncated at exactly T steps after the restore


def test_every_state_of_an_episode_restores(demo_file):
    env_id, demos = demo_file
    env = fresh_env(env_id)
    for t in range(T + 1):  # t = 0 is the reset state (nothing to replay), the others a step's
        env.reset()
        state, goal = demo_state(demos, E, t)
        obs = f32(sim_state.set_state(env, state, goal))
        np.testing.assert_array_equal(obs["observation"], demos["o"][E, t], err_msg=f"t={t}")
        back = sim_state.get_state(env)  # the restored env gives its state back unchanged
        assert set(back) == set(state) and all(np.array_equal(back[k], state[k]) for k in state)


@pytest.mark.parametrize("env_id", [*TASKS, "FetchStack2-v1"])
def test_float64_observations_restore_bit_for_bit(env_id):
    env = make_env(env_id, seed=0)
    sim_state.track(env)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(7):
        env.step(rng.uniform(-1, 1, 4).astype(np.float32))
    state, goal = sim_state.get_state(env), env.unwrapped.goal.copy()
    expected = env.unwrapped._get_obs()
    action = rng.uniform(-1, 1, 4).astype(np.float32)
    after = env.step(action)

    restored = fresh_env(env_id)
    obs = sim_state.set_state(restored, state, goal)
    for key in expected:
        assert obs[key].dtype == np.float64
        np.testing.assert_array_equal(obs[key], expected[key])
    step = restored.step(action)
    for key in after[0]:
        np.testing.assert_array_equal(step[0][key], after[0][key])
    assert step[1:4] == after[1:4]  # reward, terminated, truncated
    assert step[4].keys() == after[4].keys()  # info, with FetchStack's per-block arrays
    assert all(np.array_equal(step[4][key], after[4][key]) for key in after[4])


def test_tracking_leaves_the_trajectory_unchanged():
    tracked, plain = make_env("FetchPickAndPlace-v4"), make_env("FetchPickAndPlace-v4")
    sim_state.track(tracked)
    sim_state.track(tracked)  # idempotent
    a, b = tracked.reset(seed=1)[0], plain.reset(seed=1)[0]
    rng = np.random.default_rng(1)
    for _ in range(10):
        u = rng.uniform(-1, 1, 4).astype(np.float32)
        a, b = tracked.step(u)[0], plain.step(u)[0]
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_why_a_step_state_is_replayed():
    # mj_step leaves site_xpos one substep behind qpos, and PickAndPlace does no mj_forward after its step:
    # its observation is of that stale kinematics. A plain write of the end-of-step state and mj_forward
    # would show a different observation; sim_state's replay of the last substep shows the same.
    env = make_env("FetchPickAndPlace-v4")
    sim_state.track(env)
    env.reset(seed=2)
    for _ in range(5):
        obs = env.step(np.array([1.0, 0.5, -0.5, 1.0], np.float32))[0]
    raw = env.unwrapped
    mujoco.mj_forward(raw.model, raw.data)
    assert np.abs(raw._get_obs()["observation"] - obs["observation"]).max() > 1e-4


def test_errors_are_one_line_value_errors():
    def message(call) -> str:
        with pytest.raises(ValueError) as info:
            call()
        assert "\n" not in str(info.value)
        return str(info.value)

    cartpole = gym.make("CartPole-v1")
    assert "not a gymnasium-robotics MujocoRobotEnv" in message(lambda: sim_state.get_state(cartpole))
    assert "not a gymnasium-robotics MujocoRobotEnv" in message(lambda: sim_state.set_state(cartpole, {}, []))

    untracked = make_env("FetchPush-v4")
    assert "sim_state.track(env)" in message(lambda: sim_state.get_state(untracked))
    sim_state.track(untracked)  # after the env's reset (make_env resets): its last step cannot be seen
    assert "needs a reset" in message(lambda: sim_state.get_state(untracked))

    reach = make_env("FetchReach-v4")
    sim_state.track(reach)
    reach.reset(seed=0)
    reach_state, reach_goal = sim_state.get_state(reach), reach.unwrapped.goal
    push = fresh_env("FetchPush-v4")
    assert "from another model" in message(lambda: sim_state.set_state(push, reach_state, reach_goal))
    push.step(np.zeros(4, np.float32))
    assert "run 1 steps since its reset" in message(lambda: sim_state.set_state(push, reach_state, reach_goal))
    reach.reset()
    assert "goal has shape (2,)" in message(lambda: sim_state.set_state(reach, reach_state, [0.0, 0.0]))
    assert "does not know: bogus" in message(
        lambda: sim_state.set_state(reach, {**reach_state, "bogus": np.ones(2)}, reach_goal)
    )


def test_demos_saved_by_play_carry_states_that_restore_and_continue_them(tmp_path):
    from pathlib import Path

    from her.play import play

    policy = Path(__file__).resolve().parents[1] / "experiment" / "results" / "reach" / "policy.npz"
    out = tmp_path / "played.npz"
    play(str(policy), n_episodes=2, seed=5, render=False, save_demos=str(out))
    env_id = "FetchReach-v4"
    demos = load_demos(out, env_id=env_id, dims=env_dims(make_env(env_id, seed=0)), T=T, num_demo=2, need_states=True)
    env = fresh_env(env_id)
    state, goal = demo_state(demos, 1, STEP)
    obs = f32(sim_state.set_state(env, state, goal))
    np.testing.assert_array_equal(obs["observation"], demos["o"][1, STEP])
    for t in range(STEP, T):
        obs = f32(env.step(demos["u"][1, t])[0])
        np.testing.assert_array_equal(obs["observation"], demos["o"][1, t + 1], err_msg=f"step {t}")
