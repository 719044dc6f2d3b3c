"""Building a run's parts: threads per MPI process, and distinct seeds for every env."""

from __future__ import annotations

import pytest
from conftest import tiny_run

from her import mpi, parts
from her.config import ConfigError, build_config


def test_tf_threads_pins_tensorflows_threads_whatever_the_host():
    import subprocess
    import sys

    code = (
        "from her.parts import configure_threads; configure_threads(1, 3); import tensorflow as tf; "
        "print(tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["3", "3"], done.stderr[-2000:]


def test_thread_count_is_the_hosts_share_but_never_more_than_the_usable_cores():
    assert parts.thread_count(1, host_cores=8, usable_cores=8) == 8
    assert parts.thread_count(2, host_cores=8, usable_cores=8) == 4
    assert parts.thread_count(1, host_cores=8, usable_cores=1) == 1  # mpirun -np 1 without --oversubscribe pins a core
    assert parts.thread_count(4, host_cores=2, usable_cores=2) == 1  # more MPI processes than cores


def test_every_env_of_a_run_gets_its_own_seed(tmp_path):
    built = parts.build(build_config({**tiny_run(), "num_env": 2, "log_path": tmp_path}), mpi.SingleProcess())
    goals = [env.unwrapped.goal.copy() for env in built.envs + built.eval_envs]
    assert len({tuple(g) for g in goals}) == 4
    assert list(tmp_path.iterdir()) == []  # building writes nothing into the log folder


def test_a_second_rank_draws_other_goals_than_the_first(tmp_path):
    class Rank1(mpi.SingleProcess):
        rank = 1

    config = build_config({**tiny_run(), "log_path": tmp_path})
    first, second = parts.build(config, mpi.SingleProcess()), parts.build(config, Rank1())
    assert not (first.envs[0].unwrapped.goal == second.envs[0].unwrapped.goal).all()
    assert first.explore_rng.random() != second.explore_rng.random()


def test_critic_targets_are_bounded_by_the_lowest_return_of_the_envs_reward(tmp_path):
    def clip(**flags):
        config = build_config({**tiny_run(), "log_path": tmp_path, **flags})
        return parts.build(config, mpi.SingleProcess()).learner.clip_low

    assert clip() == pytest.approx(-50.0)  # FetchReach: -1 per step over gamma 0.98's horizon, the reference's bound
    assert clip(env="FetchStack2") == pytest.approx(-100.0)  # gamma 0.99
    assert clip(env="FetchStack2", env_kwargs="reward_type=step") == pytest.approx(-200.0)  # down to -2 per step


def test_energy_priority_draws_the_updates_episodes_and_needs_goals_of_3d_positions(tmp_path):
    plain = parts.build(build_config({**tiny_run(), "log_path": tmp_path}), mpi.SingleProcess())
    assert plain.buffer.priority is None  # the reference's uniform draws
    energy = parts.build(
        build_config({**tiny_run(), "log_path": tmp_path, "replay_priority": "energy"}), mpi.SingleProcess()
    )
    assert energy.buffer.priority is not None
    with pytest.raises(
        ConfigError,
        match="--replay_priority energy reads achieved goals as 3-d positions, and "
        "PointGoal-v0's have 2 dimensions: use --replay_priority uniform",
    ):
        parts.build(
            build_config(
                {
                    **tiny_run(),
                    "log_path": tmp_path,
                    "replay_priority": "energy",
                    "gym_packages": "examples.point_goal",
                    "env": "PointGoal-v0",
                }
            ),
            mpi.SingleProcess(),
        )
