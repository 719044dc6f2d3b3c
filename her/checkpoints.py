"""A run folder's durable state: one lock for its whole life, and checkpoints committed as a whole.

Layout of a log folder::

    .lock                      held (flock) by the writing process for as long as the run is going
    checkpoints/epoch_000007/  one directory per saved epoch, the newest two kept
        state_rank<r>.npz      weights, Adam, normaliser, every RNG, counters (every rank)
        buffer_rank<r>.npz     the replay buffer, with the epoch it is from (every rank)
        progress.csv           the log up to this epoch, as text
        policy_latest.npz, policy_best.npz
    checkpoints/.epoch_000008.partial/   being written; never read
    progress.csv, policy_latest.npz, policy_best.npz, policy_<epoch>.npz   published from the newest checkpoint

Every rank writes its files into the partial directory; only when all have finished does rank 0 rename it to
its final name (the commit), which is atomic. The previous checkpoint stays until then, so a kill or a full
disk at any moment leaves the last committed checkpoint whole. The files at the top of the folder are copies of
the newest checkpoint's, each replaced atomically, never links to it: a user may edit them without touching the
checkpoint, and --resume publishes them again. This is the scheme of Orbax's CheckpointManager
(write to a temporary name, finalise by rename, keep the last N) without its asynchronous writes: a buffer
save is a few seconds per epoch at most here, and a synchronous save keeps a resumed run exact.

A file that did not change since the previous checkpoint (a buffer saved only every few epochs, the best
policy) is linked into the new one, so each checkpoint is complete on its own and rotation can delete
any older one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from her import atomic
from her.errors import ResumeError, RunInUseError
from her.npz_file import NPZ_READ_ERRORS, check_npz_members, read_with_meta

FOLDER = "checkpoints"
KEEP = 2
_NAME = re.compile(r"^epoch_(\d{6,})$")
STATE_FORMAT = "her-tf2-training-state"


def name(epoch: int) -> str:
    return f"epoch_{epoch:06d}"


def partial_dir(log_dir: Path, epoch: int) -> Path:
    return Path(log_dir) / FOLDER / f".{name(epoch)}.partial"


def committed(log_dir: str | Path) -> list[tuple[int, Path]]:
    """The committed checkpoints of a log folder, oldest first."""
    folder = Path(log_dir) / FOLDER
    if not folder.is_dir():
        return []
    # A commit renames a complete folder, so one without rank 0's state is not a checkpoint (an empty stray one).
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := _NAME.match(p.name)) and (p / "state_rank0.npz").is_file()
    ]
    return sorted(found)


def without_state(log_dir: str | Path, after: int = -1) -> list[Path]:
    """Folders named as committed checkpoints of epochs after ``after`` that lack rank 0's state, oldest first:
    a commit never makes one, so their state was removed or lost afterwards."""
    folder = Path(log_dir) / FOLDER
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := _NAME.match(p.name)) and int(m.group(1)) > after and not (p / "state_rank0.npz").is_file()
    ]
    return [p for _, p in sorted(found)]


def latest(log_dir: str | Path) -> tuple[int, Path] | None:
    found = committed(log_dir)
    return found[-1] if found else None


def begin(log_dir: Path, epoch: int) -> Path:
    """An empty partial directory for ``epoch`` (rank 0; a stale one from a killed save is removed first)."""
    partial = partial_dir(log_dir, epoch)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return partial


def commit(log_dir: Path, epoch: int, keep: int = KEEP) -> Path:
    """Make the partial checkpoint of ``epoch`` the newest committed one, then drop all but the last ``keep``."""
    final = Path(log_dir) / FOLDER / name(epoch)
    if final.exists():  # a resumed run saving an epoch again after a failed publish: the new one wins
        shutil.rmtree(final)
    os.rename(partial_dir(log_dir, epoch), final)
    atomic.fsync_dir(final.parent)
    for _, old in committed(log_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


# The files a run writes at the top of its folder; their temporaries are the only hidden files it removes there.
TOP_LEVEL = re.compile(r"^(params\.json|versions\.json|progress\.csv|policy_\w+\.npz)$")


def remove_partials(log_dir: str | Path) -> None:
    """Delete what killed saves of this run left behind: partial checkpoints and the temporaries of its own files.

    Only names the run itself writes are touched, and only at the top of the folder and in ``checkpoints/``:
    a folder given as ``--log_path`` may hold other things, even another run's folder.
    """
    folder = Path(log_dir) / FOLDER
    if folder.is_dir():
        for partial in folder.glob(".*.partial"):
            shutil.rmtree(partial, ignore_errors=True)
    atomic.remove_stale_temporaries(log_dir, lambda name: bool(TOP_LEVEL.match(name)))


def copy_file(source: Path, dest: Path) -> None:
    """``dest`` becomes a copy of ``source``, atomically: a file of its own, so that a user who edits or empties
    it (a top-level progress.csv, say) leaves the checkpoint whole."""
    with open(source, "rb") as src:
        atomic.write_with(dest, lambda f: shutil.copyfileobj(src, f, 1 << 20))


def link_or_copy(source: Path, dest: Path) -> None:
    """``dest`` becomes the same file as ``source``, atomically: a hard link, or a copy where links fail."""
    if dest.exists() and dest.samefile(source):
        return  # rename() of two links to one file would do nothing and leave the temporary link behind
    tmp = dest.with_name(f".{dest.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        with open(source, "rb") as src:  # a file system without hard links
            atomic.write_with(dest, lambda f: shutil.copyfileobj(src, f, 1 << 20))
        return
    os.replace(tmp, dest)


# ---- the files of one checkpoint ----


def save_state(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    atomic.savez(path, {**arrays, "meta": np.array(json.dumps({"format": STATE_FORMAT, **meta}))})


def read_state(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return read_with_meta(Path(path), "resume state", STATE_FORMAT, ResumeError)


def save_buffer(path: Path, state: Mapping[str, np.ndarray], epoch: int) -> None:
    atomic.savez(path, {**state, "epoch": np.array(epoch)}, compresslevel=1)


def read_buffer(path: Path) -> tuple[dict[str, np.ndarray], int]:
    try:
        check_npz_members(path)
        with np.load(path, allow_pickle=False) as data:
            state = {key: data[key] for key in data.files}
        return state, int(state.pop("epoch"))
    except (KeyError, *NPZ_READ_ERRORS) as e:
        raise ResumeError(f"{path} is not a readable replay buffer ({type(e).__name__}: {e})") from None


# ---- one run per folder ----


class RunLock:
    """An exclusive lock on a log folder, held by the process that writes it until the run ends.

    ``flock`` locks die with their process, so a killed run never leaves a stale lock behind. The folder itself
    is locked too, where its file system allows: ``.lock`` can be deleted under a running run, and a new
    ``.lock`` would be free, but the folder cannot be replaced while it is open.
    """

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        self._fd: int | None = None
        self._dir_fd: int | None = None

    def acquire(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        dir_fd = self._lock_folder()
        fd = os.open(self.log_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if dir_fd is not None:
                os.close(dir_fd)
            raise self.in_use(holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd, self._dir_fd = fd, dir_fd

    def _lock_folder(self) -> int | None:
        """A descriptor of the folder, flock-ed; None where the file system cannot lock folders (NFS, some
        FUSE mounts: .lock alone guards them); RunInUseError if another run holds it."""
        dir_fd = os.open(self.log_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise self.in_use(self._holder()) from None
        except OSError:
            os.close(dir_fd)
            return None
        return dir_fd

    def _holder(self) -> str:
        try:
            return (self.log_dir / ".lock").read_text(errors="replace").strip()[:64] or "another process"
        except OSError:
            return "another process, whose .lock was deleted"

    def check_free(self) -> None:
        """Raise RunInUseError if another run holds the lock, writing nothing (not even the lock file)."""
        try:
            dir_fd = os.open(self.log_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return  # no folder: no run has ever held it
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self.in_use(self._holder()) from None
        except OSError:
            pass  # a file system that cannot lock folders: .lock says
        finally:
            os.close(dir_fd)
        try:
            fd = os.open(self.log_dir / ".lock", os.O_RDWR)
        except OSError:
            return  # no lock file: no run has ever held this folder
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self.in_use(os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process") from None
        finally:
            os.close(fd)

    def still_held(self) -> bool:
        """Whether the folder's .lock is still the file this lock holds: removing or replacing the folder (or
        deleting .lock, which would let a second run in) breaks that."""
        if self._fd is None:
            return False
        try:
            return os.path.samestat(os.fstat(self._fd), os.stat(self.log_dir / ".lock"))
        except OSError:
            return False

    def in_use(self, holder: str) -> RunInUseError:
        return RunInUseError(
            f"log folder {self.log_dir} is in use by another run ({holder}): wait for it to end, "
            "or choose another --log_path"
        )

    def release(self) -> None:
        for fd in (self._fd, self._dir_fd):
            if fd is not None:
                os.close(fd)  # closing the descriptor drops the flock
        self._fd = self._dir_fd = None
