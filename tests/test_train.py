"""The training loop: exact resume, determinism, TensorBoard events, stopping on NaN."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_run

from her import checkpoints, mpi, parts, policy_file
from her.config import build_config
from her.learner import Batch
from her.logger import read_progress
from her.run import cli
from her.run_folder import check_log_dir
from her.train import Trainer, resume, train

TINY = tiny_run(buffer_save_interval=1)


def untimed(rows):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def saved_state(log_dir):
    _, folder = checkpoints.latest(log_dir)
    arrays, meta = checkpoints.read_state(folder / "state_rank0.npz")
    buffer, buffer_epoch = checkpoints.read_buffer(folder / "buffer_rank0.npz")
    meta.pop("elapsed")
    return arrays, meta, buffer, buffer_epoch


@pytest.mark.slow  # three runs of 2-3 epochs
# The twin learner draws its target noise from the update step: a resume must draw what a straight run does.
@pytest.mark.parametrize("learner", [{}, {"learner": "twin", "target_noise": 0.2}], ids=["ddpg", "twin"])
def test_resume_continues_exactly_where_a_straight_run_is(tmp_path, learner):
    run = {**TINY, **learner}
    straight = train(build_config({**run, "n_epochs": 3, "log_path": tmp_path / "straight"}))
    again = train(build_config({**run, "n_epochs": 3, "log_path": tmp_path / "again"}))
    # One process, one seed: the same numbers twice (timings aside).
    assert untimed(straight) == untimed(again)

    train(build_config({**run, "n_epochs": 2, "log_path": tmp_path / "resumed"}))
    resumed = resume(tmp_path / "resumed", n_epochs=3)
    assert [row["epoch"] for row in resumed] == [0, 1, 2]
    assert untimed(resumed) == untimed(straight)
    assert untimed(read_progress(tmp_path / "resumed" / "progress.csv")) == untimed(straight)

    a_arrays, a_meta, a_buffer, a_epoch = saved_state(tmp_path / "straight")
    b_arrays, b_meta, b_buffer, b_epoch = saved_state(tmp_path / "resumed")
    # Weights, targets, normaliser sums, Adam moments and step; generator states; counters; the buffer.
    assert a_arrays.keys() == b_arrays.keys() and any(k.startswith("opt/") for k in a_arrays)
    for key in a_arrays:
        np.testing.assert_array_equal(a_arrays[key], b_arrays[key], err_msg=key)
    assert a_meta == b_meta and a_meta["epoch"] == 2
    assert a_epoch == b_epoch == 2
    for key in a_buffer:
        np.testing.assert_array_equal(a_buffer[key], b_buffer[key], err_msg=key)


def test_resuming_a_finished_run_says_so(tmp_path, capsys):
    train(build_config({**TINY, "n_epochs": 1, "log_path": tmp_path / "run"}))
    assert cli(["--resume", str(tmp_path / "run")]) == 2
    assert "already finished its 1 epochs" in capsys.readouterr().err
    assert cli(["--resume", str(tmp_path / "run"), "--seed", "4"]) == 2
    assert "drop --seed" in capsys.readouterr().err


def test_tensorboard_events_hold_every_epoch_on_the_env_step_axis_and_the_config(tmp_path):
    config = build_config({**TINY, "n_epochs": 2, "log_path": tmp_path / "run"})
    train(config)
    events = list((tmp_path / "run").glob("events.out.tfevents.*"))
    assert len(events) == 1
    success, epochs, texts = {}, {}, {}
    for record in tf.data.TFRecordDataset(str(events[0])):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            if value.tag == "test/success_rate":
                success[event.step] = value.simple_value
            elif value.tag == "epoch":
                epochs[event.step] = value.simple_value
            elif value.metadata.plugin_data.plugin_name == "text":
                texts[value.tag] = tf.make_ndarray(value.tensor).item().decode()
    rows = read_progress(tmp_path / "run" / "progress.csv")
    assert success == {int(row["total/env_steps"]): pytest.approx(row["test/success_rate"]) for row in rows}
    assert epochs == {int(row["total/env_steps"]): row["epoch"] for row in rows} and len(epochs) == 2
    assert f"| seed | {config.seed} |" in texts["config"].splitlines()


def event_epochs(log_dir) -> list[float]:
    """The epochs of every event file in ``log_dir``, in file-name order, as often as they were written."""
    epochs = []
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            epochs += [value.simple_value for value in event.summary.value if value.tag == "epoch"]
    return epochs


def test_an_epoch_committed_but_not_yet_in_the_events_is_written_on_resume(tmp_path, monkeypatch):
    from her.errors import Interrupted
    from her.logger import Logger

    log = tmp_path / "run"
    committed = Logger.committed

    def killed_before_the_event_of_epoch_1(self, row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt  # after the commit of epoch 1, before its event
        committed(self, row)

    monkeypatch.setattr(Logger, "committed", killed_before_the_event_of_epoch_1)
    with pytest.raises(Interrupted, match="the last complete epoch is 1"):
        train(build_config({**TINY, "n_epochs": 3, "log_path": log}))
    assert event_epochs(log) == [0]
    monkeypatch.setattr(Logger, "committed", committed)
    with open(next(log.glob("events.out.tfevents.*")), "ab") as f:
        f.write(b"\x10\x00\x00")  # and the kill cut a record short
    resume(log)
    assert sorted(event_epochs(log)) == [0, 1, 2]


def test_a_nan_stops_training_naming_the_epoch_and_keeps_the_last_good_policy(tmp_path, monkeypatch, capsys):
    original = Trainer.run_epoch

    def poisoned(self, epoch):
        row = original(self, epoch)
        if epoch == 1:
            self.parts.learner.actor.params[0].assign(tf.fill(self.parts.learner.actor.params[0].shape, np.nan))
        return row

    monkeypatch.setattr(Trainer, "run_epoch", poisoned)
    log = tmp_path / "run"
    args = [f"--{k}={v}" for k, v in TINY.items()] + ["--n_epochs", "4", "--log_path", str(log)]
    assert cli(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: epoch 1: network parameters became NaN or infinite; the last good policy is kept"
    arrays, meta = policy_file.read_policy(log / "policy_latest.npz")
    assert meta["epoch"] == 0 and all(np.isfinite(a).all() for a in arrays.values())
    assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0]


def test_the_log_folder_check_creates_nothing(tmp_path):
    config = build_config({**TINY, "log_path": tmp_path / "a" / "b"})
    check_log_dir(config)
    assert list(tmp_path.iterdir()) == []


def test_a_short_pick_and_place_run_with_demos_logs_bc_loss_and_q_filter(tmp_path):
    from her.demo import save_demos
    from her.experts import generate

    demos = tmp_path / "demos.npz"
    save_demos(demos, generate("FetchPickAndPlace-v4", 3, seed=0).episodes, "FetchPickAndPlace-v4")
    config = build_config(
        {
            **TINY,
            "env": "FetchPickAndPlace",
            "n_epochs": 2,
            "demo_file": demos,
            "num_demo": 3,
            "batch_size": 48,
            "demo_batch_size": 16,
            "log_path": tmp_path / "run",
        }
    )
    assert config.bc_loss and config.q_filter and config.n_cycles == 2  # user flags win over the demo preset
    trainer = Trainer(config, mpi.SingleProcess())
    assert trainer.parts.demo_buffer.current_size == 3
    # The normaliser saw the demos before any episode of the agent's own: 3 episodes of T samples each.
    assert trainer.parts.learner.o_stats.count == 1 + 3 * config.T
    trainer.store(trainer.parts.worker.generate_rollouts())
    batches = trainer.sample_batches(3)  # three steps' batches: 32 own rows, then 16 demo rows, in each
    assert batches.o.shape == (3, 48, trainer.parts.dims["o"]) and batches.is_demo.sum(axis=1).tolist() == [16, 16, 16]
    demo_actions = {tuple(u) for u in trainer.parts.demo_buffer.buffers["u"].reshape(-1, trainer.parts.dims["u"])}
    assert all(tuple(u) in demo_actions for u in batches.u[:, 32:].reshape(-1, trainer.parts.dims["u"]))
    assert not any(tuple(u) in demo_actions for u in batches.u[:, :32].reshape(-1, trainer.parts.dims["u"]))
    rows = trainer.run()
    for row in rows:
        assert row["loss/bc"] > 0 and 0.0 <= row["demo/q_filter_pass"] <= 1.0
    assert "loss/bc" in read_progress(tmp_path / "run" / "progress.csv")[0]


def reach_demos(path, seed=0):
    from her.demo import save_demos
    from her.experts import generate

    save_demos(path, generate("FetchReach-v4", 3, seed=seed).episodes, "FetchReach-v4")
    return path


def test_resume_takes_a_moved_demo_file_only_if_it_holds_the_same_demos(tmp_path, capsys):
    demos = reach_demos(tmp_path / "demos.npz")
    log = tmp_path / "run"
    args = [f"--{k}={v}" for k, v in TINY.items()] + [
        "--n_epochs",
        "1",
        "--demo_file",
        str(demos),
        "--num_demo",
        "3",
        "--batch_size",
        "48",
        "--demo_batch_size",
        "16",
    ]
    assert cli(args + ["--log_path", str(log)]) == 0
    moved = demos.rename(tmp_path / "moved.npz")
    reach_demos(tmp_path / "other.npz", seed=1)
    capsys.readouterr()
    assert cli(["--resume", str(log), "--n_epochs", "2"]) == 2
    assert f"demo file {demos} does not exist" in capsys.readouterr().err
    assert cli(["--resume", str(log), "--n_epochs", "2", "--demo_file", str(tmp_path / "other.npz")]) == 2
    assert capsys.readouterr().err == (
        f"error: --demo_file {tmp_path / 'other.npz'} holds other demonstrations than "
        "the run was trained with: pass the file it was trained with (--resume DIR "
        "--demo_file FILE)\n"
    )
    assert cli(["--resume", str(log), "--n_epochs", "2", "--demo_file", str(moved)]) == 0
    assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0, 1]


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"seed": None}, "seed needs a value of type int"),
        ({"batch_size": "many"}, "batch_size must be an integer, got 'many'"),
        ({"env": "FetchPush"}, "env 'FetchPush' does not match env_id 'FetchReach-v4' and T 50"),
        (
            {"env": "FetchPush", "env_id": "FetchPush-v4"},
            "is from a run on FetchReach-v4, but params.json says FetchPush-v4",
        ),
        ({"colour": "red"}, "unknown keys ['colour']: written by another version"),
        (
            {"hidden": 8},
            "params.json says hidden = 8, but the run was trained with 16: put the value back, or start a "
            "new run with --config",
        ),
        ({"rollout_batch_size": 2}, "says rollout_batch_size = 2, but the run was trained with 1"),
    ],
)
def test_resume_of_an_edited_params_json_is_one_line(tmp_path, capsys, edit, message):
    import json

    log = tmp_path / "run"
    train(build_config({**TINY, "n_epochs": 1, "log_path": log}))
    params = json.loads((log / "params.json").read_text())
    (log / "params.json").write_text(json.dumps({**params, **edit}))
    assert cli(["--resume", str(log), "--n_epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_resume_needs_no_load_path_file_once_an_epoch_is_saved_and_takes_a_moved_one(tmp_path, capsys):
    import json

    train(build_config({**TINY, "n_epochs": 1, "log_path": tmp_path / "a"}))
    start = shutil.copy(tmp_path / "a" / "policy_best.npz", tmp_path / "start.npz")
    train(build_config({**TINY, "n_epochs": 1, "load_path": start, "log_path": tmp_path / "b"}))
    moved = Path(start).rename(tmp_path / "moved.npz")
    assert cli(["--resume", str(tmp_path / "b"), "--n_epochs", "2"]) == 0  # the checkpoint holds the weights
    assert cli(["--resume", str(tmp_path / "b"), "--n_epochs", "3", "--load_path", str(moved)]) == 0
    assert json.loads((tmp_path / "b" / "params.json").read_text())["load_path"] == str(moved)
    assert [row["epoch"] for row in read_progress(tmp_path / "b" / "progress.csv")] == [0, 1, 2]
    capsys.readouterr()
    assert cli(["--resume", str(tmp_path / "a"), "--n_epochs", "2", "--load_path", str(moved)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'a'} was trained from freshly made networks, not from a policy: drop --load_path\n"
    )


@pytest.mark.parametrize("claim", [{"learner": "twin"}, {"layer_norm": True}])
def test_a_policy_whose_record_does_not_match_its_arrays_is_one_line(tmp_path, capsys, claim):
    train(build_config({**TINY, "n_epochs": 1, "log_path": tmp_path / "a"}))
    arrays, meta = policy_file.read_policy(tmp_path / "a" / "policy_best.npz")
    edited = tmp_path / "edited.npz"  # a DDPG's arrays, recorded as another learner's
    policy_file.save_policy(edited, arrays, {**meta["config"], **claim}, meta["dims"])
    flags = [item for key, value in claim.items() for item in (f"--{key}", str(int(value)) if value is True else value)]
    args = [item for key, value in TINY.items() for item in (f"--{key}", str(value))]
    assert cli([*args, *flags, "--n_epochs", "1", "--load_path", str(edited), "--log_path", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: {edited} records networks of learner {claim.get('learner', 'ddpg')}, layer_norm "
        f"{int(claim.get('layer_norm', False))}, but its arrays are not theirs ("
    )
    assert err.endswith("the file was edited or damaged; use another policy file\n") and err.count("\n") == 1
    assert not (tmp_path / "b").exists()


def test_resume_refuses_files_of_another_run(tmp_path, capsys):
    train(build_config({**TINY, "n_epochs": 1, "log_path": tmp_path / "reach"}))
    train(build_config({**TINY, "env": "FetchPush", "n_epochs": 1, "log_path": tmp_path / "push"}))
    ours = checkpoints.latest(tmp_path / "reach")[1] / "buffer_rank0.npz"
    ours.unlink()
    shutil.copy(checkpoints.latest(tmp_path / "push")[1] / "buffer_rank0.npz", ours)
    assert cli(["--resume", str(tmp_path / "reach"), "--n_epochs", "2"]) == 2
    assert "buffer_rank0.npz does not fit this run's replay buffer" in capsys.readouterr().err


# ---- resets to demonstration states (--demo_reset_p) ----

PICK = {**TINY, "env": "FetchPickAndPlace", "num_demo": 3, "batch_size": 48, "demo_batch_size": 16}


@pytest.fixture(scope="module")
def pick_demos(tmp_path_factory):
    """Three scripted FetchPickAndPlace episodes in a version-2 file (with simulator states)."""
    from her.demo import save_demos
    from her.experts import generate

    path = tmp_path_factory.mktemp("pick") / "demos.npz"
    save_demos(path, generate("FetchPickAndPlace-v4", 3, seed=0).episodes, "FetchPickAndPlace-v4")
    return path


def spy_on_demo_buffer(monkeypatch):
    """The keys of the demo arrays the trainer puts into its demo buffer, one set per Trainer."""
    seen = []
    original = parts.fill_demo_buffer

    def spy(config, demos, *args):
        seen.append(set(demos))
        return original(config, demos, *args)

    monkeypatch.setattr(parts, "fill_demo_buffer", spy)
    return seen


def test_with_demo_reset_p_1_every_training_episode_starts_in_a_demo_state_and_no_test_episode_does(
    tmp_path, pick_demos, monkeypatch
):
    from her.demo import EPISODE_KEYS, load_demos

    seen = spy_on_demo_buffer(monkeypatch)
    config = build_config({**PICK, "num_env": 2, "demo_file": pick_demos, "demo_reset_p": 1, "log_path": tmp_path})
    trainer = Trainer(config, mpi.SingleProcess())
    assert seen == [set(EPISODE_KEYS)]  # the states restore envs; they never reach a buffer
    T = config.T
    demos = load_demos(pick_demos, env_id=config.env_id, dims=trainer.parts.dims, T=T, num_demo=3)
    final_goals = demos["ag"][:, T]

    def demo_start(o0):
        return [(e, t) for e in range(3) for t in range(T + 1) if np.array_equal(demos["o"][e, t], o0)]

    starts = []
    for _ in range(3):
        episode = trainer.parts.worker.generate_rollouts()
        for i in range(config.rollout_batch_size):
            found = demo_start(episode["o"][i, 0])
            assert found, "a training episode began outside the demonstrations"
            e, t = found[0]
            assert t < T  # never the final state, which already achieves the goal
            np.testing.assert_array_equal(episode["ag"][i, 0], demos["ag"][e, t])
            np.testing.assert_array_equal(episode["g"][i], np.broadcast_to(final_goals[e], (T, 3)))
            starts.append((e, t))
    assert len(set(starts)) > 1  # drawn, not always the same state

    for _ in range(2):
        episode = trainer.parts.evaluator.generate_rollouts()
        for i in range(config.rollout_batch_size):
            assert not demo_start(episode["o"][i, 0])
            assert not any(np.array_equal(episode["g"][i, 0], goal) for goal in final_goals)


def test_demo_reset_p_0_changes_nothing(tmp_path, pick_demos, monkeypatch):
    from her import env_state
    from her.demo import EPISODE_KEYS

    seen = spy_on_demo_buffer(monkeypatch)
    touched = []  # no env is tracked or restored: every episode starts with the env's own reset
    for name in ("track", "set_state"):
        monkeypatch.setattr(env_state, name, lambda *a, name=name: touched.append(name))
    base = {**PICK, "n_epochs": 1, "demo_file": pick_demos}
    trainer = Trainer(build_config({**base, "demo_reset_p": 0, "log_path": tmp_path / "zero"}), mpi.SingleProcess())
    assert seen == [set(EPISODE_KEYS)]
    rows = trainer.run()
    assert touched == []
    # The same run from a file without states (version 1) is the same run: the states were never used.
    with np.load(pick_demos) as data:
        arrays = {key: data[key] for key in data.files if not key.startswith("state/")}
    np.savez(tmp_path / "v1.npz", **{**arrays, "version": np.array(1)})
    assert untimed(rows) == untimed(
        train(build_config({**base, "demo_file": tmp_path / "v1.npz", "log_path": tmp_path / "v1"}))
    )


def test_resume_with_demo_resets_continues_exactly_where_a_straight_run_is(tmp_path, pick_demos, monkeypatch):
    import json

    from her import sim_state

    restores = []
    set_state = sim_state.set_state
    monkeypatch.setattr(sim_state, "set_state", lambda *a: restores.append(1) or set_state(*a))
    config = {**PICK, "demo_file": pick_demos, "demo_reset_p": 0.5}
    straight = train(build_config({**config, "n_epochs": 3, "log_path": tmp_path / "straight"}))
    assert 0 < len(restores) < 3 * PICK["n_cycles"]  # some training episodes started from demo states, not all
    train(build_config({**config, "n_epochs": 2, "log_path": tmp_path / "resumed"}))
    resumed = resume(tmp_path / "resumed", n_epochs=3)
    assert untimed(resumed) == untimed(straight)
    assert json.loads((tmp_path / "resumed" / "params.json").read_text())["demo_reset_p"] == 0.5

    a_arrays, a_meta, a_buffer, _ = saved_state(tmp_path / "straight")
    b_arrays, b_meta, b_buffer, _ = saved_state(tmp_path / "resumed")
    assert a_meta == b_meta
    for key in a_arrays:
        np.testing.assert_array_equal(a_arrays[key], b_arrays[key], err_msg=key)
    for key in a_buffer:
        np.testing.assert_array_equal(a_buffer[key], b_buffer[key], err_msg=key)


def test_demo_resets_without_demos_or_states_are_one_line_errors(tmp_path, pick_demos, capsys):
    from her.demo import EPISODE_KEYS

    args = [f"--{k}={v}" for k, v in PICK.items()] + ["--n_epochs", "1", "--log_path", str(tmp_path / "run")]
    assert cli(args + ["--demo_reset_p", "0.5"]) == 2
    assert capsys.readouterr().err == (
        "error: demo_reset_p=0.5 needs demonstrations to reset to: pass --demo_file <file.npz>\n"
    )
    assert cli(args + ["--demo_reset_p", "1.5", "--demo_file", str(pick_demos)]) == 2
    assert capsys.readouterr().err == "error: demo_reset_p must be in [0, 1], got 1.5\n"

    v1 = tmp_path / "v1.npz"
    with np.load(pick_demos) as data:
        np.savez(
            v1,
            **{key: data[key] for key in EPISODE_KEYS},
            env_id=data["env_id"],
            format=data["format"],
            version=np.array(1),
        )
    assert cli(args + ["--demo_reset_p", "0.5", "--demo_file", str(v1)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {v1} is a version-1 demo file, without the simulator states")
    assert err.count("\n") == 1
    assert "her-demos --env FetchPickAndPlace-v4 --num_episodes 3" in err
    assert not (tmp_path / "run").exists()  # refused before the log folder was made


def test_the_stop_rule_counts_a_pooled_0_9_as_0_9(tmp_path, monkeypatch):
    # Two MPI processes with 19 and 17 successes of 20 log (0.95 + 0.85) / 2 = 0.8999999999999999: that is 36 of 40,
    # which holds a 0.9 target; before the tolerance such a run trained on to its cap.
    pooled = (0.95 + 0.85) / 2
    assert pooled < 0.9
    metrics = Trainer.epoch_metrics
    monkeypatch.setattr(
        Trainer, "epoch_metrics", lambda self, *args: {**metrics(self, *args), "test/success_rate": pooled}
    )
    rows = train(
        build_config(
            {**TINY, "n_epochs": 5, "stop_success_rate": 0.9, "stop_patience": 2, "log_path": tmp_path / "run"}
        )
    )
    assert [row["epoch"] for row in rows] == [0, 1]


def test_without_the_bc_loss_the_demos_are_still_replayed_and_the_actor_loss_is_the_plain_one(tmp_path, pick_demos):
    # Nair et al.'s "no BC loss" ablation: the demo rows stay in every batch (and in the critic's loss).
    config = build_config(
        {**PICK, "n_epochs": 1, "demo_file": pick_demos, "bc_loss": 0, "q_filter": 0, "log_path": tmp_path}
    )
    trainer = Trainer(config, mpi.SingleProcess())
    trainer.store(trainer.parts.worker.generate_rollouts())
    batches = trainer.sample_batches(2)
    assert batches.is_demo.sum(axis=1).tolist() == [config.demo_batch_size] * 2
    learner = trainer.parts.learner
    assert not learner.use_bc_loss
    metrics = learner.train(Batch(*(x[0] for x in batches)))
    assert "cloning_loss" not in metrics
    row = trainer.run()[0]
    assert "loss/bc" not in row and np.isfinite(row["loss/actor"])


def test_a_resume_that_cannot_write_names_the_checkpoint_it_keeps(tmp_path, monkeypatch, capsys):
    import errno
    import os

    log = tmp_path / "run"
    train(build_config({**TINY, "n_epochs": 1, "log_path": log}))

    def read_only(lock):  # a read-only folder: the lock file cannot be opened for writing
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(lock.log_dir / ".lock"))

    monkeypatch.setattr(checkpoints.RunLock, "acquire", read_only)
    capsys.readouterr()
    assert cli(["--resume", str(log), "--n_epochs", "2"]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot write {log / '.lock'} (Read-only file system): the last complete checkpoint "
        f"({log / 'checkpoints' / 'epoch_000000'}) is kept; once the problem is fixed, continue with --resume {log}\n"
    )


@pytest.mark.parametrize("remove", ["folder", "lock"])
def test_a_log_folder_removed_or_unlocked_while_the_run_goes_stops_it_in_one_line(
    tmp_path, monkeypatch, capsys, remove
):
    from her.run_folder import RunFolder

    log = tmp_path / "run"
    save = RunFolder.save

    def save_after_removal(folder, epoch, row, csv_text):
        if epoch == 1:
            shutil.rmtree(log) if remove == "folder" else (log / ".lock").unlink()
        return save(folder, epoch, row, csv_text)

    monkeypatch.setattr(RunFolder, "save", save_after_removal)
    assert cli([f"--{k}={v}" for k, v in TINY.items()] + ["--n_epochs", "2", "--log_path", str(log)]) == 1
    assert capsys.readouterr().err == (
        f"error: log folder {log} was removed, replaced or unlocked (its .lock is not the one this run holds) while "
        "the run was going: the run stops; start it again in a folder of its own\n"
    )
    assert not log.exists() if remove == "folder" else checkpoints.latest(log)[0] == 0


def test_a_missing_buffer_file_is_named_as_missing_not_as_a_setting(tmp_path, capsys):
    log = tmp_path / "run"
    train(build_config({**TINY, "n_epochs": 1, "log_path": log}))  # buffer_save_interval 1: every epoch saves it
    (checkpoints.latest(log)[1] / "buffer_rank0.npz").unlink()
    capsys.readouterr()
    assert cli(["--resume", str(log), "--n_epochs", "2"]) == 0
    assert (
        "note: resuming after epoch 0, but its replay buffer file is missing (removed or lost): the replay "
        "buffer starts empty\n"
    ) in capsys.readouterr().err


def test_a_newest_checkpoint_without_rank_0s_state_is_noted(tmp_path, capsys):
    log = tmp_path / "run"
    train(build_config({**TINY, "n_epochs": 2, "log_path": log}))
    newest = checkpoints.latest(log)[1]
    (newest / "state_rank0.npz").unlink()
    capsys.readouterr()
    assert cli(["--resume", str(log), "--n_epochs", "3"]) == 0
    assert (
        f"note: resuming from the older checkpoint {log / 'checkpoints' / 'epoch_000000'}, as the newest cannot "
        f"be used: {newest / 'state_rank0.npz'} is missing (removed or lost)\n"
    ) in capsys.readouterr().err
    assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0, 1, 2]


def test_with_every_buffer_saved_a_lost_buffer_resumes_exactly_from_the_older_checkpoint(tmp_path, capsys):
    straight, log = tmp_path / "straight", tmp_path / "run"
    expected = train(build_config({**TINY, "n_epochs": 3, "log_path": straight}))
    train(build_config({**TINY, "n_epochs": 2, "log_path": log}))
    newest = checkpoints.latest(log)[1]
    (newest / "buffer_rank0.npz").unlink()
    capsys.readouterr()
    assert cli(["--resume", str(log), "--n_epochs", "3"]) == 0
    err = capsys.readouterr().err
    assert f"note: resuming from the older checkpoint {log / 'checkpoints' / 'epoch_000000'}" in err
    assert f"{newest / 'buffer_rank0.npz'} is missing (removed or lost), and the older checkpoint resumes" in err
    assert untimed(read_progress(log / "progress.csv")) == untimed(expected)


def test_a_missing_state_file_of_another_rank_is_named_as_missing(tmp_path):
    from her.errors import ResumeError
    from her.run_folder import Counters, RunFolder

    class Rank1(mpi.SingleProcess):
        rank, size = 1, 2

    config = build_config({**TINY, "n_epochs": 1, "log_path": tmp_path / "run"})
    train(config)
    folder = checkpoints.latest(tmp_path / "run")[1]
    # Rank 0's state is there (and would name a wrong MPI process count first): rank 1's file was removed.
    with pytest.raises(
        ResumeError,
        match=r"state_rank1.npz is missing \(removed or lost\): the checkpoint is "
        r"incomplete",
    ):
        RunFolder(config, Rank1(), parts=None, counters=Counters()).read_checkpoint(folder)
