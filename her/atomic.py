"""Atomic file writes: a reader (or a run killed mid-write) sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import numpy as np


def write_with(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it into place (durably)."""
    path = Path(path)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        replace_durably(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temporary_beside(path: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """An open descriptor and the name of a new hidden file beside ``path``, with a plain file's permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes the file private (0600)
    return fd, Path(tmp)


def replace_durably(tmp: Path, path: Path) -> None:
    """Rename a complete ``tmp`` (already fsynced) to ``path``, and make the rename itself durable: without the
    directory's fsync a power cut can leave the entry pointing nowhere."""
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a directory's entries (renames, new files) to disk."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    write_with(path, lambda f: f.write(text.encode()))


def savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compresslevel: int | None = None) -> None:
    """An .npz at exactly ``path``, atomically; deflated at ``compresslevel`` (1-9) if given.

    Level 1 compresses simulation arrays about as well as numpy's default level at several times its speed.
    """

    def write(f: IO[bytes]) -> None:
        mode = zipfile.ZIP_STORED if compresslevel is None else zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(f, "w", mode, compresslevel=compresslevel, allowZip64=True) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    write_npy(member, array)

    write_with(path, write)


def write_npy(f: IO[bytes], array: np.ndarray, chunk_bytes: int = 1 << 20) -> None:
    """``np.lib.format.write_array`` byte for byte, but without its 16 MiB copies into a zip member.

    Saving a full replay buffer with numpy's writer held an extra 16-19 MB at the peak; this writes views.
    """
    array = np.asarray(array, order="C")  # unlike ascontiguousarray, keeps 0-d arrays 0-d
    if array.dtype.hasobject:
        raise ValueError("object arrays are not saved: they would need pickle to load")
    np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
    data = memoryview(array.reshape(-1).view(np.uint8).data)
    for start in range(0, len(data), chunk_bytes):
        f.write(data[start : start + chunk_bytes])


def remove_stale_temporaries(folder: str | os.PathLike, owned: Callable[[str], bool]) -> None:
    """Delete the temporaries that writers killed before their rename left in ``folder`` (not below it) for the
    files whose names ``owned`` accepts: ``.<name>.<random>.tmp`` and ``.<name>.link.tmp``."""
    for stale in Path(folder).glob(".*.tmp"):
        target = stale.name[1:].removesuffix(".tmp").removesuffix(".link")
        target = target if owned(target) else target.rpartition(".")[0]  # drop mkstemp's random part
        if owned(target) and stale.is_file():
            stale.unlink(missing_ok=True)
