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
