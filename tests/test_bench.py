"""bench/bench.py reaches into the learner's internals (_train_steps_graph, the buffer, the memory child):
run every stage on a tiny budget so that a rename there breaks a test, not the next benchmark."""

import pytest

from bench import bench


@pytest.mark.slow
def test_every_stage_runs_on_a_tiny_budget(tmp_path):
    trainer = bench.make_trainer(
        "FetchReach",
        str(tmp_path / "run"),
        n_cycles=1,
        n_batches=2,
        batch_size=16,
        hidden=8,
        layers=1,
        n_test_rollouts=1,
        num_env=1,
        tensorboard=False,
    )
    rollouts = bench.bench_rollouts(trainer, episodes=1, repeats=1)
    assert set(rollouts) == {"worker_steps_per_s", "env_step_steps_per_s", "physics_steps_per_s"}
    updates = bench.bench_updates(trainer, n_updates=2, repeats=1)
    assert set(updates) == {
        "updates_per_s",
        "xla_floor_updates_per_s",
        "graph_updates_per_s",
        "one_step_per_call_updates_per_s",
    }
    epoch = bench.bench_epoch(trainer, repeats=2)  # one pair with the epoch first, one with the floor first
    assert epoch["epoch_s"] > 0 and epoch["floor_s"] >= epoch["floor_env_s"] > 0
    assert len(epoch["all_ratios"]) == 2 and epoch["ratio"] == max(epoch["all_ratios"])
    assert epoch["ratio"] == pytest.approx(epoch["epoch_s"] / epoch["floor_s"])
    assert all(value > 0 for value in [*rollouts.values(), *updates.values()])
    # The memory child (the reference configuration: 2 envs), with a buffer of one rollout batch, not 1e6.
    peak, nbytes = bench.peak_memory("FetchReach", str(tmp_path), 2 * trainer.config.T)
    assert peak > 0 and nbytes > 0


def test_set_changes_the_configuration_and_refuses_what_is_not_a_key(tmp_path, monkeypatch, capsys):
    import sys

    for args, message in [
        (["--set", "layer_norm"], "--set takes KEY=VALUE pairs"),
        (["--set", "bogus=1"], "unknown configuration key --bogus"),
    ]:
        monkeypatch.setattr(sys, "argv", ["bench.py", "--skip", "rollouts", "updates", "epoch", "memory", *args])
        with pytest.raises(SystemExit) as exit_info:
            bench.main()
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    trainer = bench.make_trainer("FetchReach", str(tmp_path / "run"), layer_norm="1", hidden="8", layers="1")
    assert trainer.config.layer_norm and trainer.parts.learner.actor.net.scales


def test_update_costs_time_every_variant_and_variants_parse():
    from bench import learners

    tiny = {
        "n_cycles": 1,
        "n_batches": 2,
        "batch_size": 16,
        "hidden": 8,
        "layers": 1,
        "n_test_rollouts": 1,
        "num_env": 1,
    }
    costs = learners.update_costs(
        "FetchReach", {"reference": {}, "twin": {"learner": "twin"}}, n_updates=2, repeats=1, base=tiny
    )
    assert set(costs) == {"reference", "twin"} and all(ms > 0 for ms in costs.values())
    assert learners.parse_variant("wide:hidden=512,layer_norm=1") == ("wide", {"hidden": "512", "layer_norm": "1"})
    for bad in ["wide", "wide:", "wide:hidden", ":hidden=1"]:
        with pytest.raises(ValueError, match="--variant takes"):
            learners.parse_variant(bad)


def test_interleave_times_every_kind_of_block(tmp_path):
    from bench import interleave

    trainer = bench.make_trainer(
        "FetchReach", str(tmp_path / "run"), n_batches=2, batch_size=16, hidden=8, layers=1, tensorboard=False
    )
    times = interleave.measure(trainer, rounds=2, pause_ms=1)
    assert len(times) == 7 and all(len(values) == 2 and min(values) > 0 for values in times.values())
    assert trainer.parts.buffer.current_size >= 100  # filled before timing, so updates sample a real buffer
