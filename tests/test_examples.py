"""examples/: the README's own-env example trains as the README runs it, and its reward is vectorised."""

from __future__ import annotations

import numpy as np

from her.run import cli

TINY = ["--n_epochs", "1", "--n_cycles", "1", "--n_batches", "2", "--n_test_rollouts", "1", "--num_env", "1"]


def test_the_point_goal_example_trains_from_the_readme_command(tmp_path, capsys):
    assert cli(["--gym_packages", "examples.point_goal", "--env", "PointGoal-v0", *TINY,
                "--log_path", str(tmp_path / "a")]) == 0
    assert cli(["--env", "examples.point_goal:PointGoal-v0", "--env_kwargs", "distance=0.1", "size=2.0", *TINY,
                "--log_path", str(tmp_path / "b")]) == 0
    assert "done: best test success" in capsys.readouterr().out


def test_the_point_goal_reward_takes_batches_of_goals():
    from examples.point_goal import PointGoalEnv

    env = PointGoalEnv(distance=0.5)
    achieved = np.zeros((3, 4, 2))
    desired = np.zeros((3, 4, 2))
    desired[1, 2] = [1.0, 0.0]  # 1.0 away: not reached
    reward = env.compute_reward(achieved, desired, None)
    assert reward.shape == (3, 4) and reward[1, 2] == -1.0 and reward.sum() == -1.0



def test_a_zero_one_reward_reported_as_success_is_learned(tmp_path):
    """The maze envs' contract: 1 on success (else 0), reported as info['success']. Critic targets clipped to
    [-1/(1-gamma), 0] as for Fetch's -1/0 reward would erase every success: Q would stay at or below 0 and the
    point would learn nothing (a goal lies within 0.2 of its start about 3% of the time)."""
    from her.config import build_config
    from her.train import train

    config = build_config({"gym_packages": "examples.point_goal", "env": "PointGoal-v0", "n_epochs": 3,
                           "n_cycles": 10, "env_kwargs": "reward_type=success distance=0.2", "seed": 1,
                           "log_path": tmp_path / "run"})
    rows = train(config)
    assert max(row["test/success_rate"] for row in rows) >= 0.3, [row["test/success_rate"] for row in rows]
    assert rows[-1]["test/mean_Q"] > 0.05  # the discounted successes to come (0.15 here)
