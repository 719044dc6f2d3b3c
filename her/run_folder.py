"""A run's log folder: claiming it, and saving and restoring everything a resume needs (``her.checkpoints``).

``RunFolder`` is the one place that knows what a checkpoint holds: every rank's network and optimiser state,
RNG states, episode counters, replay buffer, and the loop's own counters (``Counters``); rank 0 adds the log
and the policies. ``resume_config`` rebuilds a run's configuration from its ``params.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from her import atomic, checkpoints, mpi, policy_file, report, versions
from her.config import Config, ConfigError, config_from_dict, package_list
from her.errors import ResumeError, UserError, WriteError
from her.logger import read_progress, write_params

if TYPE_CHECKING:  # the command line checks folders with this module before TensorFlow is imported
    from her.parts import Parts

R = TypeVar("R")
RESUME_MAY_CHANGE = {"n_epochs", "demo_file", "load_path", "log_path", "mpi_size"}  # the rest is the run itself
PUBLISHED = ("progress.csv", "policy_latest.npz", "policy_best.npz")  # copied to the top after every checkpoint


@dataclass
class Counters:
    """The loop's own state that a resume restores with the parts."""

    first_epoch: int = 0  # the epoch this session starts at
    best_success: float = -np.inf  # best test success so far, which policy_best.npz holds
    success_streak: int = 0  # epochs in a row at stop_success_rate
    elapsed_before: float = 0.0  # wall seconds of earlier sessions of a resumed run
    start_time: float = field(default_factory=time.time)

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.start_time


def holds_run(log_dir: Path) -> bool:
    """Whether a folder holds a run that finished an epoch (a folder whose run died in epoch 0 does not)."""
    return checkpoints.latest(log_dir) is not None or (log_dir / "progress.csv").exists()


def check_log_dir(config: Config) -> None:
    """Refuse a log folder that already holds a run or cannot be written, without creating anything."""
    assert config.log_path is not None, "build_config derives log_path"
    log_dir = Path(config.log_path)
    checkpoints.RunLock(log_dir).check_free()
    if holds_run(log_dir):
        raise ConfigError(f"log folder {log_dir} already holds a run: choose another --log_path, or --resume it")
    existing = next(p for p in [log_dir, *log_dir.absolute().parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write to log folder {log_dir} ({existing} is not a writable folder): choose another --log_path"
        )


class RunFolder:
    """The log folder of one run, as seen from one rank: every write and read of it goes through here."""

    def __init__(self, config: Config, comm: mpi.SingleProcess | mpi.MPIComm, parts: Parts, counters: Counters):
        self.config = config
        self.comm = comm
        self.parts = parts
        self.counters = counters
        assert config.log_path is not None, "build_config derives log_path"
        self.log_dir = Path(config.log_path)
        self.lock = checkpoints.RunLock(self.log_dir)
        self.last_checkpoint: Path | None = None

    def guarded(self, fn: Callable[[], R]) -> R:
        """``fn()`` on every rank; a failed write (or bad input) on any rank is raised on all of them."""

        def run() -> R:
            try:
                return fn()
            except OSError as e:
                raise self.write_error(e) from None

        return mpi.on_every_rank(self.comm, run, (WriteError, UserError))

    def on_rank_0(self, fn: Callable[[], Any]) -> None:
        """``fn()`` on rank 0 only, with its failure raised on every rank."""
        self.guarded(lambda: fn() if self.comm.rank == 0 else None)

    def write_error(self, e: OSError) -> WriteError:
        what = e.filename or self.log_dir
        # Before a resume has restored anything, the folder itself says what is kept.
        last = self.last_checkpoint or next(
            (folder for _, folder in reversed(checkpoints.committed(self.log_dir))), None
        )
        kept = (
            (
                f"the last complete checkpoint ({last}) is kept; once the problem is fixed, "
                f"continue with --resume {self.log_dir}"
            )
            if last
            else ("no epoch was complete yet: start the run again once the problem is fixed")
        )
        return WriteError(f"cannot write {what} ({e.strerror or e}): {kept}")

    # ---- starting ----

    def claim(self, resume: bool) -> None:
        """Rank 0 takes the folder's lock for the run's life and clears what an earlier attempt left half-done."""

        def claim() -> None:
            self.lock.acquire()
            if not resume and holds_run(self.log_dir):  # started meanwhile by another run
                self.lock.release()
                raise ConfigError(
                    f"log folder {self.log_dir} already holds a run: choose another --log_path, or --resume it"
                )
            # An attempt that finished no epoch may have left an event file; it is not removed, as the run cannot
            # tell its own from a user's, and it holds at most that attempt's epoch 0.
            checkpoints.remove_partials(self.log_dir)

        self.on_rank_0(claim)

    def write_params(self, resume: bool) -> None:
        """Rank 0: params.json and versions.json (noting, on a resume, packages that changed since)."""

        def write() -> None:
            if resume and (note := versions.difference(self.log_dir, self.comm.size > 1)):
                print(note, file=sys.stderr)
            write_params(self.log_dir, self.config.to_dict())
            versions.write(self.log_dir, self.comm.size > 1, self.parts.demo_digest)

        self.on_rank_0(write)

    def release(self) -> None:
        self.lock.release()

    # ---- saving ----

    def save(self, epoch: int, row: dict[str, float], progress_csv: str | None) -> None:
        """Every rank's state and buffer, the log (rank 0's ``progress_csv``) and the policies as one checkpoint,
        committed by rank 0."""
        c, p, rank = self.config, self.parts, self.comm.rank
        success = row["test/success_rate"]
        improved = report.reaches(success, self.counters.best_success)  # ties too, as the summary says
        self.counters.best_success = max(self.counters.best_success, success)
        save_buffer = c.buffer_save_interval > 0 and (
            (epoch + 1) % c.buffer_save_interval == 0 or epoch + 1 == c.n_epochs
        )
        previous = self.last_checkpoint
        staging = checkpoints.partial_dir(self.log_dir, epoch)
        network_state = p.learner.network_state()

        def write() -> None:
            arrays, meta = self.training_state(epoch, network_state)
            checkpoints.save_state(staging / f"state_rank{rank}.npz", arrays, meta)
            buffer_file = f"buffer_rank{rank}.npz"
            if save_buffer:
                checkpoints.save_buffer(staging / buffer_file, p.buffer.state_dict(), epoch)
            elif previous is not None and (previous / buffer_file).exists():
                checkpoints.link_or_copy(previous / buffer_file, staging / buffer_file)
            if rank == 0:
                assert progress_csv is not None, "rank 0 writes the log"
                atomic.write_text(staging / "progress.csv", progress_csv)
                save_policy = partial(
                    policy_file.save_policy,
                    network_state=network_state,
                    config=c.to_dict(),
                    dims=p.dims,
                    head=p.learner.head,
                    epoch=epoch,
                    test_success_rate=success,
                )
                save_policy(staging / "policy_latest.npz")
                if improved or previous is None:
                    save_policy(staging / "policy_best.npz")
                else:
                    checkpoints.link_or_copy(previous / "policy_best.npz", staging / "policy_best.npz")

        try:
            self.on_rank_0(self.check_still_ours)
            self.on_rank_0(lambda: checkpoints.begin(self.log_dir, epoch))
            self.guarded(write)  # every rank has written its files before rank 0 commits
            self.on_rank_0(lambda: checkpoints.commit(self.log_dir, epoch))
        except WriteError:
            if rank == 0:  # give back the space of the half-written checkpoint
                shutil.rmtree(staging, ignore_errors=True)
            raise
        self.last_checkpoint = self.log_dir / checkpoints.FOLDER / checkpoints.name(epoch)
        self.on_rank_0(lambda: self.publish(epoch))

    def check_still_ours(self) -> None:
        """Stop rather than write into a folder that was removed, replaced or unlocked while the run was going:
        the run would recreate it silently, and another run may already be writing it."""
        if not self.lock.still_held():
            raise WriteError(
                f"log folder {self.log_dir} was removed, replaced or unlocked (its .lock is not the "
                "one this run holds) while the run was going: the run stops; start it again in a "
                "folder of its own"
            )

    def publish(self, epoch: int) -> None:
        assert self.last_checkpoint is not None, "publish follows a checkpoint"
        publish(self.log_dir, self.last_checkpoint, epoch, self.config.policy_save_interval)

    def training_state(
        self, epoch: int, network_state: dict[str, np.ndarray] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything but the replay buffer that the next epoch depends on."""
        p, k = self.parts, self.counters
        network_state = p.learner.network_state() if network_state is None else network_state
        arrays = {**network_state, **{f"opt/{name}": v for name, v in p.learner.optimizer_state().items()}}
        meta = {
            "epoch": epoch,
            "env_id": self.config.env_id,
            "dims": p.dims,
            "demo_digest": p.demo_digest,
            "best_success": k.best_success,
            "success_streak": k.success_streak,
            "elapsed": k.elapsed(),
            "rng/explore": p.explore_rng.bit_generator.state,
            "rng/sample": p.sample_rng.bit_generator.state,
            "rng/envs": [env.unwrapped.np_random.bit_generator.state for env in p.envs],
            "rng/eval_envs": [env.unwrapped.np_random.bit_generator.state for env in p.eval_envs],
            "episodes": [p.worker.n_episodes, p.evaluator.n_episodes],
            "mpi_size": self.comm.size,
            # What the run is, not where it lives: a resumed run's state then equals a straight run's.
            "config": {k: v for k, v in self.config.to_dict().items() if k not in RESUME_MAY_CHANGE},
        }
        return arrays, meta

    # ---- restoring ----

    def restore(self) -> list[dict[str, float]]:
        """Continue from the newest committed checkpoint; returns its progress rows (rank 0), or [] if none."""
        found = self.comm.bcast(checkpoints.committed(self.log_dir))  # rank 0's view of the shared folder
        if not found:
            if self.comm.rank == 0:
                print(f"note: no epoch of {self.log_dir} was complete: starting it from epoch 0", file=sys.stderr)
            return []
        # The newest checkpoint, or the one before it if the newest cannot be read (a damaged disk, a hand edit).
        newest_error: ResumeError | None = None
        lost = self.comm.bcast(checkpoints.without_state(self.log_dir, after=found[-1][0]))  # not listed above
        if lost:
            newest_error = ResumeError(f"{lost[-1] / 'state_rank0.npz'} is missing (removed or lost)")
        for i, candidate in enumerate(reversed(found)):
            # Where every checkpoint has its buffer, an older one with its buffer resumes exactly; one without does not.
            need_buffer = self.config.buffer_save_interval == 1 and i + 1 < len(found)
            try:
                arrays, meta, buffer, buffer_epoch, rows = mpi.on_every_rank(
                    self.comm, partial(self.read_checkpoint, candidate[1], need_buffer), (UserError,)
                )
                break
            except ResumeError as e:
                newest_error = newest_error or e
        else:
            assert newest_error is not None
            raise newest_error
        epoch, folder = candidate
        if newest_error is not None and self.comm.rank == 0:
            print(
                f"note: resuming from the older checkpoint {folder}, as the newest cannot be used: {newest_error}",
                file=sys.stderr,
            )
        p, k = self.parts, self.counters
        p.learner.load_network_state(arrays)
        p.learner.load_optimizer_state({name[4:]: v for name, v in arrays.items() if name.startswith("opt/")})
        p.explore_rng.bit_generator.state = meta["rng/explore"]
        p.sample_rng.bit_generator.state = meta["rng/sample"]
        for env, state in zip(p.envs, meta["rng/envs"]):
            env.unwrapped.np_random.bit_generator.state = state
        for env, state in zip(p.eval_envs, meta["rng/eval_envs"]):
            env.unwrapped.np_random.bit_generator.state = state
        p.worker.n_episodes, p.evaluator.n_episodes = meta["episodes"]
        k.best_success = meta["best_success"]
        k.success_streak = meta.get("success_streak", 0)
        k.elapsed_before = meta["elapsed"]
        k.first_epoch = epoch + 1
        self.last_checkpoint = folder
        if buffer is not None:
            p.buffer.load_state_dict(buffer)
        self.on_rank_0(lambda: self.publish(epoch))
        if self.comm.rank != 0:
            return []
        if buffer_epoch != epoch:
            if self.config.buffer_save_interval == 1:  # every checkpoint had its buffer: this one lost it
                why = "its replay buffer file is missing (removed or lost): the replay buffer starts empty"
            elif buffer_epoch is None:
                why = "no replay buffer was saved; --buffer_save_interval 1 makes a resume exact"
            else:
                why = f"the replay buffer is from epoch {buffer_epoch}; --buffer_save_interval 1 makes a resume exact"
            print(f"note: resuming after epoch {epoch}, but {why}", file=sys.stderr)
        return rows

    def check_unchanged(self, trained: dict[str, Any]) -> None:
        """Refuse a params.json edited since the checkpoint (hidden, rollout_batch_size, ...): a resume continues
        the run as it was. Keys a resume may change, and keys older checkpoints did not record, are not compared."""
        now = self.config.to_dict()
        for key in sorted(set(trained) & set(now) - RESUME_MAY_CHANGE):
            if trained[key] != now[key]:
                raise ResumeError(
                    f"{self.log_dir / 'params.json'} says {key} = {now[key]!r}, but the run was trained "
                    f"with {trained[key]!r}: put the value back, or start a new run with --config"
                )

    def read_checkpoint(
        self, folder: Path, need_buffer: bool = False
    ) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, np.ndarray] | None, int | None, list[dict[str, float]]]:
        """This rank's state and (if one was saved) replay buffer from a checkpoint, checked against the run,
        and on rank 0 the log up to it. ``need_buffer``: a missing buffer file makes the checkpoint unusable."""
        rank, p = self.comm.rank, self.parts
        rows: list[dict[str, float]] = []
        if rank == 0:
            try:
                rows = read_progress(folder / "progress.csv")
            except (OSError, ValueError, TypeError) as e:
                raise ResumeError(f"{folder / 'progress.csv'} is damaged ({e}): the run cannot be resumed") from None
        state_path = folder / f"state_rank{rank}.npz"
        if not state_path.exists():
            # Rank 0's state exists (or the folder would not count as a checkpoint), and says how many MPI
            # processes trained the run; when that number is wrong, rank 0's error is the one raised.
            raise ResumeError(f"{state_path} is missing (removed or lost): the checkpoint is incomplete")
        arrays, meta = checkpoints.read_state(state_path)
        if meta.get("mpi_size") != self.comm.size:
            raise ResumeError(
                f"{self.log_dir} was trained on {meta.get('mpi_size')} MPI processes: resume it with "
                f"mpirun -np {meta.get('mpi_size')}"
            )
        if meta.get("env_id") != self.config.env_id or meta.get("dims") != p.dims:
            raise ResumeError(
                f"{state_path} is from a run on {meta.get('env_id')}, but params.json says "
                f"{self.config.env_id}: the folder's files do not belong together"
            )
        self.check_unchanged(meta.get("config") or {})
        if meta.get("demo_digest") != p.demo_digest:
            raise ResumeError(
                f"--demo_file {self.config.demo_file} holds other demonstrations than the run was "
                "trained with: pass the file it was trained with (--resume DIR --demo_file FILE)"
            )
        buffer_path = folder / f"buffer_rank{rank}.npz"
        if not buffer_path.exists():
            if need_buffer:
                raise ResumeError(
                    f"{buffer_path} is missing (removed or lost), and the older checkpoint resumes exactly"
                )
            return arrays, meta, None, None, rows
        buffer, buffer_epoch = checkpoints.read_buffer(buffer_path)
        expected = {f"buffers/{name}": v.shape[1:] for name, v in p.buffer.buffers.items()}
        if {name: buffer[name].shape[1:] for name in expected if name in buffer} != expected:
            raise ResumeError(
                f"{buffer_path} does not fit this run's replay buffer: the folder's files do not belong together"
            )
        return arrays, meta, buffer, buffer_epoch, rows


def publish(log_dir: Path, checkpoint: Path, epoch: int, policy_save_interval: int) -> None:
    """Rank 0: the top-level progress.csv and policies become copies of the checkpoint's (of ``epoch``)."""
    for name in PUBLISHED:
        checkpoints.copy_file(checkpoint / name, log_dir / name)
    if policy_save_interval > 0 and epoch % policy_save_interval == 0:
        checkpoints.copy_file(checkpoint / "policy_latest.npz", log_dir / f"policy_{epoch}.npz")


def repair_published(log_dir: Path, config: Config) -> bool:
    """Rank 0, for a run that has finished: publish its newest checkpoint again if a kill between the commit and
    the copies left the top-level files behind it. Returns whether anything was out of date."""
    found = checkpoints.latest(log_dir)
    assert found is not None, "a finished run has a checkpoint"
    epoch, folder = found
    source = {name: folder / name for name in PUBLISHED}
    if config.policy_save_interval > 0 and epoch % config.policy_save_interval == 0:
        source[f"policy_{epoch}.npz"] = folder / "policy_latest.npz"

    def stale(name: str) -> bool:
        try:
            return (log_dir / name).read_bytes() != source[name].read_bytes()
        except FileNotFoundError:
            return True

    if not any(stale(name) for name in source):
        return False
    lock = checkpoints.RunLock(log_dir)
    lock.acquire()
    try:
        publish(log_dir, folder, epoch, config.policy_save_interval)
    finally:
        lock.release()
    return True


def resume_config(
    log_dir: str | Path,
    n_epochs: int | None = None,
    mpi_size: int = 1,
    demo_file: str | None = None,
    load_path: str | None = None,
    gym_packages: str = "",
) -> Config:
    """The configuration of the run in ``log_dir`` (its params.json), optionally with more epochs or the demo
    file or starting policy at a new place. The modules its env needs are imported only if ``gym_packages``
    names them (or they are imported already)."""
    log_dir = Path(log_dir)
    params = log_dir / "params.json"
    try:
        saved = json.loads(params.read_text())
    except FileNotFoundError:
        raise ResumeError(f"{log_dir} holds no run to resume (no params.json): pass the log folder of a run") from None
    except (OSError, ValueError) as e:
        raise ResumeError(f"cannot read {params} ({e}): the run cannot be resumed") from None
    changes: dict[str, Any] = {"log_path": str(log_dir), "mpi_size": mpi_size}
    if n_epochs is not None:
        changes["n_epochs"] = n_epochs
    if demo_file is not None:
        if not (isinstance(saved, dict) and saved.get("demo_file")):
            raise ResumeError(f"{log_dir} was trained without demonstrations: drop --demo_file")
        changes["demo_file"] = demo_file
    if load_path is not None:
        if not (isinstance(saved, dict) and saved.get("load_path")):
            raise ResumeError(f"{log_dir} was trained from freshly made networks, not from a policy: drop --load_path")
        changes["load_path"] = load_path
    try:
        return config_from_dict(saved, package_list(gym_packages), **changes)
    except ConfigError as e:
        raise ResumeError(f"{params}: {e}") from None
