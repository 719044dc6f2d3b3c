"""Reading an .npz archive safely, for demo files, policy files and checkpoints alike: never a pickle, and never
an allocation that only a member's header asks for."""

from __future__ import annotations

import json
import math
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# What reading a damaged .npz can raise: numpy parses .npy headers with tokenize/ast, zlib checks deflated data.
NPZ_READ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    tokenize.TokenError,
    SyntaxError,
    RuntimeError,
    NotImplementedError,
)  # zipfile: a flipped 'encrypted' flag or method


def check_npz_members(path: str | Path) -> None:
    """Raise ValueError unless every member of the .npz archive at ``path`` is an .npy array whose header claims
    no more bytes than the member holds: numpy allocates a member's shape before reading a byte of it, so a
    crafted header would ask for petabytes."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"member {info.filename} is not an .npy array")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(member)
                needed = math.prod(shape) * dtype.itemsize
                if not dtype.hasobject and member.tell() + needed > info.file_size:  # pickles have no fixed size
                    raise ValueError(
                        f"member {info.filename} claims shape {shape}, {needed} bytes, more than its "
                        f"{info.file_size} bytes hold"
                    )


def read_with_meta(
    path: Path, what: str, file_format: str, error: Callable[[str], Exception]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays of an .npz and its JSON 'meta' entry, checked to be of ``file_format``; else ``error`` of one
    clear line (the caller's kind: a policy file's, a checkpoint's)."""
    if path.is_file() and not zipfile.is_zipfile(path):  # before np.load, whose error here suggests unpickling
        raise error(f"{path} is not a readable {what}: it is not an .npz archive")
    try:
        if path.is_file():
            check_npz_members(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except KeyError:
        raise error(f"{path} is an .npz but not a {what} (no 'meta' entry)") from None
    except NPZ_READ_ERRORS as e:
        pickled = "pickle" in str(e)
        reason = "it holds pickled objects, which are never loaded" if pickled else f"{type(e).__name__}: {e}"
        raise error(f"{path} is not a readable {what} ({reason})") from None
    if not isinstance(meta, dict) or meta.get("format") != file_format:
        raise error(f"{path} is not a {what} written by this project")
    return arrays, meta
