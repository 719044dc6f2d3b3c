"""The cached-index observation path must give bit-identical observations to upstream's, on every task."""

import numpy as np
import pytest

from her import envs, fetch_obs

# FetchStack assembles its own observation, so the cached path is not installed on it (tests/test_fetch_stack.py);
# it is a path of gymnasium-robotics' Fetch envs only (panda-gym's are left alone, below).
FETCH = [task for task in envs.TASKS if task.startswith("Fetch") and not task.startswith("FetchStack")]


@pytest.mark.parametrize("task", FETCH)
def test_observations_bit_identical(task):
    env_id = envs.TASKS[task]
    stock = envs.make_env(env_id, seed=5, fast_obs=False)
    fast = envs.make_env(env_id, seed=5, fast_obs=True)
    assert fetch_obs.install(envs.make_env(env_id, fast_obs=False))
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs_a, _ = stock.reset()
        obs_b, _ = fast.reset()
        for t in range(50):
            for key in obs_a:
                np.testing.assert_array_equal(obs_a[key], obs_b[key], err_msg=f"{key} at episode {episode} step {t}")
            # Full-range and saturated actions, gripper included, so the object gets pushed and grasped.
            action = np.clip(rng.normal(0, 1.5, size=4), -1, 1).astype(np.float32)
            obs_a, r_a, _, _, info_a = stock.step(action)
            obs_b, r_b, _, _, info_b = fast.step(action)
            assert r_a == r_b and info_a == info_b


def test_other_envs_are_left_alone(counting_envs):
    env = counting_envs(1)[0]
    assert not fetch_obs.install(env)


def test_panda_envs_are_left_alone():
    assert not fetch_obs.install(envs.make_env(envs.TASKS["PandaReach"], fast_obs=False))


def test_a_fast_path_that_disagrees_falls_back_to_the_library_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(envs, "_fast_obs_ok", {})  # forget this process's earlier verdicts
    install = fetch_obs.install

    def wrong_install(env):
        # The cached path as a future gymnasium-robotics might make it wrong: one coordinate off.
        if not install(env):
            return False
        right = env.unwrapped.generate_mujoco_observations
        env.unwrapped.generate_mujoco_observations = lambda: (right()[0] + 1e-3, *right()[1:])
        return True

    monkeypatch.setattr(fetch_obs, "install", wrong_install)
    first = envs.make_env("FetchReach-v4", seed=0)
    second = envs.make_env("FetchReach-v4", seed=1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "using the library's slower observation path" in err  # once per env id
    for env in (first, second):
        assert "generate_mujoco_observations" not in vars(env.unwrapped)  # the library's own method is used


def test_a_fast_path_that_agrees_is_installed(monkeypatch, capsys):
    monkeypatch.setattr(envs, "_fast_obs_ok", {})
    env = envs.make_env("FetchPush-v4", seed=0)
    assert "generate_mujoco_observations" in vars(env.unwrapped)
    assert capsys.readouterr().err == ""
