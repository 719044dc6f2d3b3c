import numpy as np
import pytest
from conftest import ConstantPolicy

from her import envs as her_envs
from her.rollout import RolloutWorker
from her.starts import SeededResets

DIMS = {"o": 2, "g": 1, "u": 2}


def test_shapes_and_exactly_T_steps(counting_envs):
    T = 5
    envs = counting_envs(3, T)
    policy = ConstantPolicy(2, 0.1)
    worker = RolloutWorker(envs, policy, DIMS, T)
    episode = worker.generate_rollouts()
    assert {k: v.shape for k, v in episode.items()} == {
        "o": (3, T + 1, 2),
        "ag": (3, T + 1, 1),
        "g": (3, T, 1),
        "u": (3, T, 2),
        "info_is_success": (3, T, 1),
    }
    assert [env.unwrapped.total_steps for env in envs] == [T] * 3
    assert policy.calls == [3] * T  # one forward per step for all envs together
    worker.generate_rollouts()
    assert [env.unwrapped.total_steps for env in envs] == [2 * T] * 3
    assert [env.unwrapped.resets for env in envs] == [2] * 3


def test_final_observation_is_the_one_the_last_step_returned(counting_envs):
    T = 5
    worker = RolloutWorker(counting_envs(2, T), ConstantPolicy(2, 0.25), DIMS, T)
    episode = worker.generate_rollouts()
    assert np.array_equal(episode["o"][0, :, 0], np.arange(T + 1))  # step counter 0..T, no auto-reset at the end
    assert np.allclose(episode["ag"][0, :, 0], 0.25 * np.arange(T + 1))
    assert np.all(episode["g"] == episode["g"][:, :1])  # one goal per episode


def test_success_is_read_after_the_last_step(counting_envs):
    T = 5
    # CountingGoalEnv reports success only after exactly T steps: reading step T-1 would give 0.
    worker = RolloutWorker(counting_envs(2, T), ConstantPolicy(2), DIMS, T, compute_Q=True)
    worker.generate_rollouts()
    logs = worker.logs("test")
    assert logs == {"test/success_rate": 1.0, "test/mean_Q": -1.0, "test/episode": 2.0}
    worker.clear_history()
    assert worker.logs("test")["test/success_rate"] == 0.0


def test_success_reported_as_info_success_counts_like_is_success(counting_envs):
    """gymnasium-robotics' mazes say info['success']; the episode's success and the logs read it all the same."""
    import gymnasium as gym

    class SaysSuccess(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated, truncated, {"success": info["is_success"]}

    T = 5
    worker = RolloutWorker([SaysSuccess(env) for env in counting_envs(2, T)], ConstantPolicy(2), DIMS, T)
    episode = worker.generate_rollouts()
    np.testing.assert_array_equal(episode["info_is_success"][:, :, 0], [[0, 0, 0, 0, 1]] * 2)
    assert worker.logs("test") == {"test/success_rate": 1.0, "test/episode": 2.0}  # not logged twice


def test_exploring_worker_needs_an_rng(counting_envs):
    with pytest.raises(ValueError, match="rng"):
        RolloutWorker(counting_envs(1), ConstantPolicy(2), DIMS, 5, noise_eps=0.2)


def test_fetch_reach_episode():
    env_id = her_envs.resolve_env_id("FetchReach")
    T = her_envs.episode_length(env_id)
    envs = [her_envs.make_env(env_id, seed=i) for i in range(2)]
    dims = her_envs.env_dims(her_envs.make_env(env_id, seed=0))
    assert T == 50 and dims == {"o": 10, "g": 3, "u": 4}
    episode = RolloutWorker(envs, ConstantPolicy(4, 0.0), dims, T).generate_rollouts()
    assert episode["o"].shape == (2, 51, 10) and episode["u"].shape == (2, 50, 4)
    # With zero actions the gripper stays near its start; achieved goal is the gripper position (obs[:3]).
    assert np.allclose(episode["ag"], episode["o"][..., :3])
    assert not np.array_equal(episode["g"][0, 0], episode["g"][1, 0])  # distinct env seeds, distinct goals


class RecordingStarts:
    """A start hook that records its calls and keeps (or, with ``shift``, moves) the reset's observation."""

    def __init__(self, shift: float = 0.0):
        self.calls: list = []
        self.shift = shift

    def start(self, env_index, env, rng):
        self.calls.append((env_index, env, rng))
        obs, _ = env.reset()
        if self.shift:
            env.unwrapped.pos += self.shift
            obs = env.unwrapped._obs()
        return obs


def test_by_default_episodes_start_at_the_envs_reset_and_a_hook_is_asked_once_per_env_and_rollout(counting_envs):
    T = 5

    def seeded_envs():
        envs = counting_envs(3, T)
        for i, env in enumerate(envs):
            env.reset(seed=i)
        return envs

    plain = RolloutWorker(seeded_envs(), ConstantPolicy(2, 0.1), DIMS, T).generate_rollouts()
    starts = RecordingStarts()
    envs = seeded_envs()
    rng = np.random.default_rng(0)
    worker = RolloutWorker(envs, ConstantPolicy(2, 0.1), DIMS, T, rng=rng, starts=starts)
    hooked = worker.generate_rollouts()
    for key in plain:  # a hook that keeps the reset's observation changes nothing
        np.testing.assert_array_equal(plain[key], hooked[key], err_msg=key)
    assert [(i, env, r) for i, env, r in starts.calls] == [(i, envs[i], rng) for i in range(3)]
    worker.generate_rollouts()
    assert [i for i, _, _ in starts.calls] == [0, 1, 2, 0, 1, 2]
    assert [env.unwrapped.resets for env in envs] == [3] * 3  # the hook's reset is the only one


def test_the_episode_begins_with_the_observation_the_hook_returns(counting_envs):
    T = 5
    episode = RolloutWorker(
        counting_envs(2, T), ConstantPolicy(2, 0.25), DIMS, T, starts=RecordingStarts(shift=10.0)
    ).generate_rollouts()
    assert np.allclose(episode["ag"][:, :, 0], 10.0 + 0.25 * np.arange(T + 1))  # and the env continues from it


def test_after_step_sees_every_step_of_every_env_with_what_the_step_returned(counting_envs):
    T = 4
    seen = []

    def after_step(t, env_index, env, result):
        obs, _reward, _terminated, truncated, info = result
        seen.append((t, env_index, env.unwrapped.steps, obs["observation"][0], info["is_success"], truncated))

    envs = counting_envs(2, T)
    episode = RolloutWorker(envs, ConstantPolicy(2), DIMS, T, after_step=after_step).generate_rollouts()
    assert [(t, i) for t, i, *_ in seen] == [(t, i) for t in range(T) for i in range(2)]  # in step order
    for t, i, steps, o, success, truncated in seen:
        assert steps == t + 1 and o == episode["o"][i, t + 1, 0]  # called after the step, with its observation
        assert success == episode["info_is_success"][i, t, 0] and truncated == (t == T - 1)


def test_seeded_resets_reseed_each_episode_in_turn(counting_envs):
    T = 3
    worker = RolloutWorker(counting_envs(1, T), ConstantPolicy(2), DIMS, T, starts=SeededResets([7, None, 7]))
    goals = [worker.generate_rollouts()["g"][0, 0, 0] for _ in range(3)]  # drawn by the env's reset
    assert goals[0] == goals[2] != goals[1]  # seed 7 twice; the unseeded reset goes on from where it was


def test_numbers_the_env_reports_after_the_last_step_are_logged_as_means(counting_envs):
    T = 3
    envs = counting_envs(2, T)
    # Per env: a per-block vector, a scalar, and values that are no numbers or too long to be a metric.
    extras = [
        {"placed": np.array([1.0, 0.0]), "clear": 1.0, "name": "x", "image": np.zeros(100)},
        {"placed": np.array([1.0, 1.0]), "clear": 0.0, "name": "y", "image": np.zeros(100)},
    ]
    for env, extra in zip(envs, extras):
        step = env.unwrapped.step

        def reporting(action, step=step, extra=extra, env=env):
            obs, reward, terminated, truncated, info = step(action)
            # Only the last step's info counts: earlier steps report the opposite.
            last = env.unwrapped.steps == T
            return (
                obs,
                reward,
                terminated,
                truncated,
                {
                    **info,
                    **(
                        extra
                        if last
                        else {"placed": 1.0 - extra["placed"], "clear": 1.0 - extra["clear"], "name": "", "image": 0}
                    ),
                },
            )

        env.unwrapped.step = reporting
    worker = RolloutWorker(envs, ConstantPolicy(2), DIMS, T)
    worker.generate_rollouts()
    worker.generate_rollouts()
    logs = worker.logs("test")
    assert {k: logs[k] for k in logs if k.startswith(("test/placed", "test/clear"))} == {
        "test/placed_0": 1.0,
        "test/placed_1": 0.5,
        "test/clear": 0.5,
    }
    assert not any("name" in k or "image" in k for k in logs)
    worker.clear_history()
    assert "test/placed_0" not in worker.logs("test")
