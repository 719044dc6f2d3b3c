"""Atomic writes: whatever moment a run is killed at, every file it leaves is complete and loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from her import atomic, checkpoint
from her.logger import read_progress

ROOT = Path(__file__).resolve().parents[1]
# Short epochs with a save after each, so random kill moments often land inside a save.
TRAIN = ["--env", "FetchReach", "--n_epochs", "200", "--n_cycles", "1", "--n_batches", "1", "--batch_size", "16",
         "--hidden", "8", "--layers", "1", "--n_test_rollouts", "1", "--num_env", "1", "--buffer_save_interval", "1",
         "--policy_save_interval", "1"]


def test_savez_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "a.npz"
    atomic.savez(path, {"x": np.arange(3)})

    class Exploding:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic.savez(path, {"x": np.arange(5), "y": Exploding()})
    with np.load(path) as data:
        assert data["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary left behind


def test_compressed_savez_loads_with_numpy(tmp_path):
    arrays = {"a": np.zeros((1000, 7), np.float32), "b": np.array(3)}
    atomic.savez(tmp_path / "c.npz", arrays, compresslevel=1)
    with np.load(tmp_path / "c.npz") as data:
        assert data["a"].shape == (1000, 7) and int(data["b"]) == 3
    assert (tmp_path / "c.npz").stat().st_size < arrays["a"].nbytes / 10


@pytest.mark.parametrize("array", [
    np.arange(10_000, dtype=np.float32).reshape(100, 4, 25), np.arange(12.0).reshape(3, 4).T,  # Fortran order
    np.array(7), np.zeros((0, 3), np.float32), np.array([True, False]), np.array(["ab", "c"]),
    np.arange(6, dtype=">i4")])
def test_write_npy_writes_numpys_bytes_in_small_chunks(array):
    import io

    ours, numpys = io.BytesIO(), io.BytesIO()
    atomic.write_npy(ours, array, chunk_bytes=7)  # chunks that split elements
    np.lib.format.write_array(numpys, array, allow_pickle=False)
    if array.flags.c_contiguous:
        assert ours.getvalue() == numpys.getvalue()
    ours.seek(0)
    loaded = np.lib.format.read_array(ours)
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


def test_write_npy_refuses_object_arrays():
    import io

    with pytest.raises(ValueError, match="object"):
        atomic.write_npy(io.BytesIO(), np.array([{"a": 1}], dtype=object))


def check_every_file_loads(log: Path) -> int:
    """Load every file of a killed run; returns how many were checked."""
    checked = 0
    for path in sorted(log.rglob("*")):
        if path.is_dir() or path.name.endswith(".tmp") or path.name.startswith("events.out"):
            continue  # temporaries are never renamed into place (and are cleaned up on resume)
        if path.name == "params.json":
            json.loads(path.read_text())
        elif path.name == "progress.csv":
            rows = read_progress(path)
            assert [row["epoch"] for row in rows] == list(range(len(rows)))
        elif path.name.startswith("policy_"):
            checkpoint.read_policy(path)
        elif path.name.startswith("state_rank"):
            checkpoint.read_training_state(path)
        elif path.name.startswith("buffer_rank"):
            checkpoint.read_buffer(path)
        else:
            raise AssertionError(f"unexpected file {path}")
        checked += 1
    return checked


@pytest.mark.parametrize("trial", range(4))
def test_sigkill_at_a_random_moment_leaves_loadable_files_and_a_resumable_run(tmp_path, trial):
    log = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "her.run", *TRAIN, "--seed", str(trial), "--log_path", str(log)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Wait for the first epoch to be saved, then kill at a random moment of the following ones.
    deadline = time.monotonic() + 120
    while not (log / "resume" / "state_rank0.npz").exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    time.sleep(np.random.default_rng(trial).uniform(0.0, 3.0))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert check_every_file_loads(log) >= 4

    from her.run import cli

    assert cli(["--resume", str(log), "--n_epochs", str(len(read_progress(log / "progress.csv")) + 1)]) == 0
    rows = read_progress(log / "progress.csv")
    assert [row["epoch"] for row in rows] == list(range(len(rows)))
    assert not list(log.rglob(".*.tmp"))


def test_ctrl_c_finishes_cleanly_with_a_message(tmp_path):
    log = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # A shell's background job inherits SIGINT as ignored, and Python then never raises KeyboardInterrupt:
    # restore the default so the test behaves the same however pytest was started.
    process = subprocess.Popen([sys.executable, "-m", "her.run", *TRAIN, "--log_path", str(log)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (log / "progress.csv").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1].startswith("interrupted")
    check_every_file_loads(log)


def test_written_files_get_the_usual_permissions(tmp_path):
    atomic.write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert (tmp_path / "a.txt").stat().st_mode == (tmp_path / "b.txt").stat().st_mode
