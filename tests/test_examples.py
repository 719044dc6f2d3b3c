"""examples/: the README's own-env example trains as the README runs it, its reward is vectorised, and the Python
examples (train then act; an Optuna search) run with small budgets."""

from __future__ import annotations

import numpy as np
import pytest

from her.run import cli

TINY = ["--n_epochs", "1", "--n_cycles", "1", "--n_batches", "2", "--n_test_rollouts", "1", "--num_env", "1"]


def test_the_point_goal_example_trains_from_the_readme_command(tmp_path, capsys):
    assert (
        cli(
            ["--gym_packages", "examples.point_goal", "--env", "PointGoal-v0", *TINY, "--log_path", str(tmp_path / "a")]
        )
        == 0
    )
    assert (
        cli(
            [
                "--env",
                "examples.point_goal:PointGoal-v0",
                "--env_kwargs",
                "distance=0.1",
                "size=2.0",
                *TINY,
                "--log_path",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
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

    config = build_config(
        {
            "gym_packages": "examples.point_goal",
            "env": "PointGoal-v0",
            "n_epochs": 3,
            "n_cycles": 10,
            "env_kwargs": "reward_type=success distance=0.2",
            "seed": 1,
            "log_path": tmp_path / "run",
        }
    )
    rows = train(config)
    assert max(row["test/success_rate"] for row in rows) >= 0.3, [row["test/success_rate"] for row in rows]
    assert rows[-1]["test/mean_Q"] > 0.05  # the discounted successes to come (0.15 here)


# A run of seconds for the Python examples: two short epochs of small networks.
BUDGET = {"n_epochs": 2, "n_cycles": 1, "n_batches": 2, "n_test_rollouts": 1, "num_env": 1, "hidden": 16, "layers": 1}


def test_the_learn_example_trains_then_acts_with_the_returned_policy(tmp_path, capsys):
    from examples.learn import held_0_9_twice, main

    rate = main(episodes=2, log_path=tmp_path / "run", **BUDGET)
    assert rate in (0.0, 0.5, 1.0)
    assert f"then {rate:.2f} success over 2 episodes of Policy(FetchReach-v4" in capsys.readouterr().out
    history = []
    assert [held_0_9_twice({"test/success_rate": s}, history) for s in (0.9, 0.8, 0.9, 1.0)] == [
        False,
        False,
        False,
        True,
    ]


def test_the_tune_example_searches_two_keys_and_prunes_through_the_callback(tmp_path):
    optuna = pytest.importorskip(
        "optuna", reason="optuna is the optional extra [tune] (pip install -e '.[tune]'); the dev extra installs it"
    )
    import json

    from examples.tune import main
    from her.logger import read_progress

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = main(n_trials=2, folder=tmp_path / "search", **BUDGET)
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert set(study.best_params) == {"replay_k", "noise_eps"}
    for trial in study.trials:
        log = tmp_path / "search" / f"trial_{trial.number}"
        params = json.loads((log / "params.json").read_text())
        assert (params["replay_k"], params["noise_eps"]) == (trial.params["replay_k"], trial.params["noise_eps"])
        assert len(read_progress(log / "progress.csv")) == 2

    # A pruner that prunes every trial at its first report: each run stops after epoch 0, its policies written.
    pruned = main(n_trials=2, folder=tmp_path / "pruned", pruner=optuna.pruners.ThresholdPruner(lower=1.1), **BUDGET)
    assert [trial.state for trial in pruned.trials] == [optuna.trial.TrialState.PRUNED] * 2
    for trial in pruned.trials:
        log = tmp_path / "pruned" / f"trial_{trial.number}"
        assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0]
        assert (log / "policy_latest.npz").is_file() and (log / "policy_best.npz").is_file()
