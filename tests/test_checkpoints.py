"""Checkpoints committed as a whole, one run per folder, and what a kill, a full disk or SIGTERM leaves behind.

The kill matrix runs a real training process that stops still at one chosen write (tests/pausing_run.py),
SIGKILLs it there, resumes, and compares the result with an uninterrupted run of the same seed.
Every test that starts a training process is marked slow (``-m "not slow"`` leaves them out); mpirun ones mpi.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_args, tiny_run

from her import checkpoints
from her.errors import RunInUseError
from her.logger import read_progress
from her.mpi import mpirun

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = mpirun()
RUN = tiny_run(
    n_epochs=3, n_batches=2, batch_size=16, hidden=8, buffer_save_interval=1, policy_save_interval=1, tensorboard=False
)
TRAIN = cli_args(RUN)
# TensorFlow's start-up lines are left to the command line to silence, as for a user.
ENV = {
    **{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    "PYTHONPATH": str(ROOT),
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
}


# ---- the module on its own ----


def test_commit_makes_a_checkpoint_visible_at_once_and_keeps_the_last_two(tmp_path):
    for epoch in range(4):
        staging = checkpoints.begin(tmp_path, epoch)
        (staging / "state_rank0.npz").write_text(str(epoch))
        assert [e for e, _ in checkpoints.committed(tmp_path)] == list(range(max(0, epoch - 2), epoch))
        checkpoints.commit(tmp_path, epoch)
    assert [e for e, _ in checkpoints.committed(tmp_path)] == [2, 3]
    epoch, folder = checkpoints.latest(tmp_path)
    assert epoch == 3 and (folder / "state_rank0.npz").read_text() == "3"


def test_a_partial_checkpoint_is_never_taken_and_is_cleaned_up(tmp_path):
    (checkpoints.begin(tmp_path, 0) / "state_rank0.npz").write_text("whole")
    checkpoints.commit(tmp_path, 0)
    staging = checkpoints.begin(tmp_path, 1)
    (staging / "state_rank0.npz").write_text("half")
    (tmp_path / ".policy_latest.npz.abc.tmp").write_text("half")
    (tmp_path / ".progress.csv.link.tmp").write_text("half")
    assert checkpoints.latest(tmp_path)[0] == 0
    checkpoints.remove_partials(tmp_path)
    assert not staging.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]


def test_an_empty_stray_epoch_folder_is_not_a_checkpoint(tmp_path):
    (checkpoints.begin(tmp_path, 0) / "state_rank0.npz").write_text("whole")
    checkpoints.commit(tmp_path, 0)
    (tmp_path / checkpoints.FOLDER / checkpoints.name(9)).mkdir()
    assert checkpoints.latest(tmp_path)[0] == 0


def test_cleaning_up_touches_only_the_runs_own_temporaries(tmp_path):
    # What another program, or another run in a folder below, has in flight is left alone.
    others = [
        tmp_path / ".notes.txt.tmp",
        tmp_path / ".policy.npz.part.tmp",
        tmp_path / "events.out.tfevents.1.h",
        tmp_path / "o" / ".progress.csv.abc.tmp",
        tmp_path / "o" / "checkpoints" / ".epoch_000001.partial" / "x",
        tmp_path / "o" / "checkpoints" / ".state_rank0.npz.abc.tmp",
    ]
    for path in others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("in flight")
    checkpoints.remove_partials(tmp_path)
    assert all(path.read_text() == "in flight" for path in others)


def test_a_published_copy_is_a_file_of_its_own(tmp_path):
    (tmp_path / "a").write_text("checkpoint")
    checkpoints.copy_file(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b").write_text("")  # a user emptying the top-level file
    assert (tmp_path / "a").read_text() == "checkpoint"
    checkpoints.copy_file(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_text() == "checkpoint"


def test_link_or_copy_replaces_the_destination_with_the_same_file(tmp_path):
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("old")
    checkpoints.link_or_copy(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").samefile(tmp_path / "a") and (tmp_path / "b").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_a_locked_folder_refuses_a_second_run_until_released(tmp_path):
    first, second = checkpoints.RunLock(tmp_path / "run"), checkpoints.RunLock(tmp_path / "run")
    first.acquire()
    in_use = f"log folder {tmp_path / 'run'} is in use by another run \\(pid {os.getpid()}\\)"
    with pytest.raises(RunInUseError, match=in_use):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_a_deleted_lock_file_does_not_let_a_second_run_in(tmp_path):
    first, second = checkpoints.RunLock(tmp_path / "run"), checkpoints.RunLock(tmp_path / "run")
    first.acquire()
    (tmp_path / "run" / ".lock").unlink()  # under the running run
    with pytest.raises(RunInUseError, match="whose .lock was deleted"):
        second.check_free()
    with pytest.raises(RunInUseError, match="in use by another run"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


# ---- real runs ----


def start(
    log: Path,
    *extra: str,
    pause_at: str = "",
    fail_at: str = "",
    mpi: int = 0,
    rank: int = 0,
    args: list[str] | None = None,
) -> subprocess.Popen:
    (log.parent / f"{log.name}.paused").unlink(missing_ok=True)
    env = {
        **ENV,
        "PAUSE_AT": pause_at,
        "FAIL_AT": fail_at,
        "PAUSE_RANK": str(rank),
        "PAUSE_FILE": str(log.parent / f"{log.name}.paused"),
    }
    cmd = [
        sys.executable,
        str(ROOT / "tests" / "pausing_run.py"),
        *(args if args is not None else TRAIN),
        "--log_path",
        str(log),
        *extra,
    ]
    if mpi:
        cmd = [str(MPIRUN), "-np", str(mpi), "--oversubscribe", *cmd]
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def stderr_tail(process: subprocess.Popen) -> str:
    return process.stderr.read()[-3000:] if process.stderr else ""


def wait_for_pause(process: subprocess.Popen, log: Path, timeout: float = 180) -> int:
    marker = log.parent / f"{log.name}.paused"
    deadline = time.monotonic() + timeout
    while not marker.exists() or not marker.read_text():
        assert process.poll() is None, stderr_tail(process)
        assert time.monotonic() < deadline, "the run never reached the write to pause at"
        time.sleep(0.02)
    return int(marker.read_text())


def run(*args: str, mpi: int = 0) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "her.run", *args]
    if mpi:
        cmd = [str(MPIRUN), "-np", str(mpi), "--oversubscribe", *cmd]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600, cwd=ROOT)


def untimed_text(path: Path) -> list[list[str]]:
    """progress.csv as text cells, without the wall-clock columns."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, key in enumerate(rows[0]) if not key.startswith("time/")]
    return [[row[i] for i in keep] for row in rows]


def final_state(log: Path, ranks: int = 1) -> list:
    found = checkpoints.latest(log)
    assert found is not None, f"{log} holds no checkpoint"
    epoch, folder = found
    out = [epoch, untimed_text(log / "progress.csv"), untimed_text(folder / "progress.csv")]
    for rank in range(ranks):
        arrays, meta = checkpoints.read_state(folder / f"state_rank{rank}.npz")
        buffer, buffer_epoch = checkpoints.read_buffer(folder / f"buffer_rank{rank}.npz")
        meta.pop("elapsed")
        out += [
            {k: v.tobytes() for k, v in arrays.items()},
            meta,
            {k: v.tobytes() for k, v in buffer.items()},
            buffer_epoch,
        ]
    return out


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted runs the interrupted ones must end up equal to, on one process and on two."""
    logs = {}
    for ranks in (1, 2):
        log = tmp_path_factory.mktemp("straight") / "run"
        result = run(*TRAIN, "--log_path", str(log), mpi=ranks if ranks > 1 else 0)
        assert result.returncode == 0, result.stderr[-3000:]
        logs[ranks] = final_state(log, ranks)
    return logs


KILL_POINTS = [  # (what is being written when the kill lands, ranks, rank killed)
    ("epoch_000001.partial/state_rank0.npz", 1, 0),
    ("epoch_000001.partial/buffer_rank0.npz", 1, 0),
    ("epoch_000001.partial/progress.csv", 1, 0),
    ("epoch_000001.partial/policy_latest.npz", 1, 0),
    ("epoch_000001.partial/policy_best.npz", 1, 0),
    ("commit:1", 1, 0),
    ("publish:progress.csv", 1, 0),
    ("publish:policy_best.npz", 1, 0),
    ("epoch_000001.partial/buffer_rank1.npz", 2, 1),
    ("epoch_000001.partial/state_rank0.npz", 2, 0),
    ("commit:1", 2, 0),
]


@pytest.mark.mpi
@pytest.mark.parametrize("pause_at, ranks, rank", KILL_POINTS, ids=[f"{p}-np{n}" for p, n, _ in KILL_POINTS])
def test_a_kill_while_any_file_is_written_resumes_exactly(tmp_path, straight, pause_at, ranks, rank):
    log = tmp_path / "run"
    process = start(log, pause_at=pause_at, mpi=ranks if ranks > 1 else 0, rank=rank)
    os.kill(wait_for_pause(process, log), signal.SIGKILL)
    process.wait(timeout=120)
    assert process.returncode != 0
    kept = checkpoints.latest(log)
    resumed = run("--resume", str(log), mpi=ranks if ranks > 1 else 0)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "note: resuming after epoch" not in resumed.stderr  # nothing older than the checkpoint was used
    assert final_state(log, ranks) == straight[ranks]
    if kept is not None:  # the rows kept from before the kill keep their text, epochs as integers
        with open(log / "progress.csv") as f:
            assert f.read().splitlines()[1].split(",")[0] == "0"
    assert not list(log.rglob("*.tmp")) and not list(log.rglob("*.partial"))


@pytest.mark.slow
def test_a_second_run_in_a_folder_in_use_is_refused_and_writes_nothing(tmp_path):
    log = tmp_path / "run"
    first = start(log, pause_at="epoch_000001.partial/state_rank0.npz")
    pid = wait_for_pause(first, log)
    before = sorted((p.relative_to(log), p.stat().st_mtime_ns) for p in log.rglob("*"))
    try:
        for args in ([*TRAIN, "--log_path", str(log)], ["--resume", str(log)]):
            second = run(*args)
            assert second.returncode == 2, second.stderr
            assert second.stderr.splitlines() == [
                f"error: log folder {log} is in use by another run (pid {pid}): wait for it to end, or choose "
                "another --log_path"
            ]
        assert sorted((p.relative_to(log), p.stat().st_mtime_ns) for p in log.rglob("*")) == before
    finally:
        os.kill(pid, signal.SIGKILL)
        first.wait()


@pytest.mark.slow
def test_a_full_disk_ends_in_one_line_and_keeps_the_last_checkpoint(tmp_path):
    log = tmp_path / "run"
    process = start(log, fail_at="epoch_000001.partial/buffer_rank0.npz")
    _, err = process.communicate(timeout=300)
    assert process.returncode == 1
    assert err.strip().splitlines() == [
        f"error: cannot write {log}/checkpoints/.epoch_000001.partial/buffer_rank0.npz (No space left on device): "
        f"the last complete checkpoint ({log}/checkpoints/epoch_000000) is kept; once the problem is fixed, "
        f"continue with --resume {log}"
    ]
    assert checkpoints.latest(log)[0] == 0 and not list(log.rglob("*.tmp"))
    assert run("--resume", str(log)).returncode == 0
    assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0, 1, 2]


@pytest.mark.mpi
def test_a_full_disk_with_two_ranks_stops_both_with_one_line(tmp_path):
    log = tmp_path / "run"
    process = start(log, fail_at="epoch_000001.partial/state_rank1.npz", mpi=2, rank=1)
    _, err = process.communicate(timeout=300)
    assert process.returncode != 0
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: cannot write {log}/checkpoints/.epoch_000001.partial/state_rank1.npz (No space left on device): "
        f"the last complete checkpoint ({log}/checkpoints/epoch_000000) is kept; once the problem is fixed, "
        f"continue with --resume {log}"
    ]
    assert "Traceback" not in err


def start_long_run(log: Path, ranks: int, first_epochs: int) -> subprocess.Popen:
    """A 200-epoch run on ``ranks`` processes (1: without mpirun), returned once ``first_epochs`` are checkpointed."""
    cmd = [sys.executable, "-m", "her.run", *cli_args({**RUN, "n_epochs": 200}), "--log_path", str(log)]
    if ranks > 1:
        cmd = [str(MPIRUN), "-np", str(ranks), "--oversubscribe", *cmd]
    process = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while (found := checkpoints.latest(log)) is None or found[0] < first_epochs - 1:
        assert process.poll() is None and time.monotonic() < deadline, stderr_tail(process)
        time.sleep(0.05)
    return process


def run_pids(log: Path) -> list[str]:
    """The process ids of the ranks training into ``log``."""
    return subprocess.run(
        ["pgrep", "-f", f"^{sys.executable} -m her.run .*{log}"], capture_output=True, text=True
    ).stdout.split()


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, pytest.param(2, marks=pytest.mark.mpi)])
def test_sigterm_stops_at_once_and_says_where_to_resume(tmp_path, ranks):
    log = tmp_path / "run"
    process = start_long_run(log, ranks, first_epochs=2)
    if ranks == 1:
        process.send_signal(signal.SIGTERM)
    else:  # as SLURM's scancel does: every process of the job step gets it
        ranks_pids = run_pids(log)
        assert len(ranks_pids) == 2
        for pid in ranks_pids:
            os.kill(int(pid), signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143
    lines = [line for line in err.replace("\0", "").splitlines() if line.startswith("stopped by SIGTERM")]
    assert len(lines) == 1, err
    epoch, folder = checkpoints.latest(log)
    said = f"stopped by SIGTERM: the last complete epoch is {epoch} ({folder}); continue with --resume {log}"
    # Under mpirun, Open MPI's abort banner (a row of dashes) shares the pipe and once landed on this line's end.
    assert lines[0] == said if ranks == 1 else lines[0].rstrip("-") == said
    assert "Traceback" not in err
    time.sleep(1)
    assert not subprocess.run(["pgrep", "-f", str(log)], capture_output=True).stdout  # no rank left behind
    assert run("--resume", str(log), "--n_epochs", str(epoch + 2), mpi=ranks if ranks > 1 else 0).returncode == 0


@pytest.mark.slow
@pytest.mark.mpi
def test_sigterm_to_one_rank_only_is_reported_by_that_rank(tmp_path):
    """Rank 0, never signalled, waits in a collective for rank 1: rank 1 says where to resume and ends the job."""
    log = tmp_path / "run"
    process = start_long_run(log, 2, first_epochs=2)
    pids = run_pids(log)
    rank_1 = [pid for pid in pids if b"OMPI_COMM_WORLD_RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes()]
    assert len(pids) == 2 and len(rank_1) == 1, pids
    os.kill(int(rank_1[0]), signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    # Under load Open MPI's output forwarding has been seen to put a NUL byte before the rank's line, as it
    # interleaves it with its own abort notice; the line itself is whole.
    lines = [line for line in err.replace("\0", "").splitlines() if line.startswith("stopped by SIGTERM")]
    assert len(lines) == 1 and f"continue with --resume {log}" in lines[0], err
    assert "Traceback" not in err
    time.sleep(1)
    assert not subprocess.run(["pgrep", "-f", str(log)], capture_output=True).stdout  # no rank left behind


@pytest.mark.mpi
def test_sigterm_to_mpirun_stops_every_rank(tmp_path):
    """Open MPI's mpirun ends the ranks itself on SIGTERM (their last words are not relayed); none is left."""
    log = tmp_path / "run"
    process = start_long_run(log, 2, first_epochs=1)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode != 0
    time.sleep(1)
    assert not subprocess.run(["pgrep", "-f", str(log)], capture_output=True).stdout
    epoch = checkpoints.latest(log)[0]
    assert run("--resume", str(log), "--n_epochs", str(epoch + 2), mpi=2).returncode == 0


@pytest.mark.slow
def test_ctrl_c_stops_with_the_same_message(tmp_path):
    log = tmp_path / "run"
    process = start(log, pause_at="epoch_000001.partial/state_rank0.npz")
    os.kill(wait_for_pause(process, log), signal.SIGINT)  # arrives mid-save: the partial checkpoint is dropped
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == (
        f"stopped by Ctrl-C: the last complete epoch is 0 "
        f"({log}/checkpoints/epoch_000000); continue with --resume {log}"
    )


@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_can_be_resumed_or_started_again(tmp_path):
    log = tmp_path / "run"
    process = start(log, pause_at="epoch_000000.partial/state_rank0.npz")
    os.kill(wait_for_pause(process, log), signal.SIGKILL)
    process.wait()
    assert checkpoints.latest(log) is None
    again = run(*TRAIN, "--n_epochs", "1", "--log_path", str(log))
    assert again.returncode == 0, again.stderr
    shutil.rmtree(log)
    process = start(log, pause_at="epoch_000000.partial/state_rank0.npz")
    os.kill(wait_for_pause(process, log), signal.SIGKILL)
    process.wait()
    resumed = run("--resume", str(log), "--n_epochs", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert f"note: no epoch of {log} was complete: starting it from epoch 0" in resumed.stderr
    assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0]


@pytest.mark.slow
def test_a_closed_stdout_stops_the_printing_not_the_training(tmp_path):
    log = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "her.run", *TRAIN, "--log_path", str(log)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.readline()  # like `| head -1`
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0 and err == ""
    assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0, 1, 2]


@pytest.mark.slow
def test_resume_restores_a_damaged_top_level_progress_csv_from_the_checkpoint(tmp_path):
    log = tmp_path / "run"
    assert run(*TRAIN, "--n_epochs", "2", "--log_path", str(log)).returncode == 0
    text = (log / "progress.csv").read_text()
    (log / "progress.csv").write_text(text[: len(text) // 2])  # truncated in place, as `: > progress.csv` would
    result = run("--resume", str(log), "--n_epochs", "3")
    assert result.returncode == 0, result.stderr
    assert (log / "progress.csv").read_text().startswith(text)
    assert np.array_equal([row["epoch"] for row in read_progress(log / "progress.csv")], [0, 1, 2])


@pytest.mark.slow
def test_a_run_in_the_parent_folder_of_a_live_run_leaves_it_to_finish(tmp_path):
    # The other run stands still with a temporary file and a partial checkpoint in flight.
    other = tmp_path / "x" / "o"
    process = start(other, "--n_epochs", "2", pause_at="epoch_000001.partial/state_rank0.npz")
    wait_for_pause(process, other)
    in_flight = sorted(p.relative_to(other) for p in other.rglob("*"))
    assert any(p.name.endswith(".tmp") for p in in_flight)
    result = run(*TRAIN, "--n_epochs", "1", "--log_path", str(tmp_path / "x"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.relative_to(other) for p in other.rglob("*")) == in_flight
    (other.parent / f"{other.name}.paused").unlink()  # let it go on
    assert process.wait(timeout=300) == 0, stderr_tail(process)
    assert [row["epoch"] for row in read_progress(other / "progress.csv")] == [0, 1]


@pytest.mark.slow
def test_a_kill_between_the_last_commit_and_the_top_level_copies_is_repaired_by_resume(tmp_path):
    log = tmp_path / "run"
    process = start(log, "--n_epochs", "1", pause_at="publish:progress.csv")
    os.kill(wait_for_pause(process, log), signal.SIGKILL)
    process.wait(timeout=120)
    assert checkpoints.latest(log)[0] == 0 and not (log / "progress.csv").exists()
    # Playing and plotting the folder find the checkpoint's files meanwhile.
    from her import plot, policy_file

    assert policy_file.resolve_policy_path(log) == log / "checkpoints" / "epoch_000000" / "policy_best.npz"
    assert [row["epoch"] for row in plot.load_runs([log])[0].rows] == [0]
    result = run("--resume", str(log))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {log} already finished its 1 epochs (a kill had left its progress.csv and "
        "policies behind its last checkpoint: they are restored): pass --n_epochs N to train it "
        "further\n"
    )
    for name in ("progress.csv", "policy_latest.npz", "policy_best.npz", "policy_0.npz"):
        assert (log / name).read_bytes() == (
            log / "checkpoints" / "epoch_000000" / name.replace("policy_0", "policy_latest")
        ).read_bytes(), name
    again = run("--resume", str(log))  # nothing left to repair
    assert again.stderr == f"error: {log} already finished its 1 epochs: pass --n_epochs N to train it further\n"


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path):
    log = tmp_path / "run"
    assert run(*TRAIN, "--n_epochs", "2", "--log_path", str(log)).returncode == 0
    damaged = log / "checkpoints" / "epoch_000001" / "state_rank0.npz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = run("--resume", str(log), "--n_epochs", "3")
    assert result.returncode == 0, result.stderr
    assert (
        f"note: resuming from the older checkpoint {log / 'checkpoints' / 'epoch_000000'}, as the newest "
        f"cannot be used: {damaged}" in result.stderr
    )
    assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0, 1, 2]
