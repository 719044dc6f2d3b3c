"""Policy files (decision D10): plain arrays in an .npz, written atomically, readable without unpickling.

A policy file holds the weights of the actor, the critic and their targets, the normaliser sums, and a JSON
record of the effective configuration and the environment's dimensions.
"""

from __future__ import annotations

import json
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import numpy as np

from her import atomic
from her.errors import UserError

POLICY_FORMAT = "her-tf2-policy"
POLICY_VERSION = 1


# What reading a damaged .npz can raise: numpy parses .npy headers with tokenize/ast, zlib checks deflated data.
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, tokenize.TokenError, SyntaxError,
                RuntimeError, NotImplementedError)  # zipfile: a flipped 'encrypted' flag or method


class PolicyFileError(UserError, ValueError):
    """A policy file that is missing, unreadable, or does not fit the task or the networks."""


def save_policy(path: str | Path, network_state: Mapping[str, np.ndarray], config: Mapping[str, Any],
                dims: Mapping[str, int], **info: Any) -> None:
    from her import versions

    # The versions travel with the file, so a policy copied out of its log folder still says what made it.
    meta = {"format": POLICY_FORMAT, "version": POLICY_VERSION, "config": dict(config), "dims": dict(dims),
            "versions": versions.current(), **info}
    arrays = dict(network_state)
    arrays["meta"] = np.array(json.dumps(meta))
    atomic.savez(path, arrays)


def resolve_policy_path(path: str | Path) -> Path:
    """A policy file, or a log folder (its policy_best.npz)."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "policy_best.npz"
        if not candidate.exists():
            raise PolicyFileError(f"{path} is a folder without policy_best.npz: pass a policy file or a log folder")
        return candidate
    if not path.exists() and path.suffix != ".npz" and path.with_name(path.name + ".npz").exists():
        return path.with_name(path.name + ".npz")  # runs/push/policy_best means runs/push/policy_best.npz
    if not path.exists():
        raise PolicyFileError(f"policy file {path} does not exist: pass a policy .npz or a log folder")
    return path


def read_with_meta(path: Path, what: str, file_format: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays of an .npz and its JSON 'meta' entry, checked to be of ``file_format``; else one clear line.

    Shared by policy files and checkpoint states, which are both such archives.
    """
    if path.is_file() and not zipfile.is_zipfile(path):  # before np.load, whose error here suggests unpickling
        raise PolicyFileError(f"{path} is not a readable {what}: it is not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except FileNotFoundError:
        raise PolicyFileError(f"{what} {path} does not exist") from None
    except KeyError:
        raise PolicyFileError(f"{path} is an .npz but not a {what} (no 'meta' entry)") from None
    except NPZ_READ_ERRORS as e:
        pickled = "pickle" in str(e)
        reason = "it holds pickled objects, which are never loaded" if pickled else f"{type(e).__name__}: {e}"
        raise PolicyFileError(f"{path} is not a readable {what} ({reason})") from None
    if not isinstance(meta, dict) or meta.get("format") != file_format:
        raise PolicyFileError(f"{path} is not a {what} written by this project")
    return arrays, meta


def read_policy(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of a policy file; any problem is a one-line PolicyFileError."""
    path = resolve_policy_path(path)
    arrays, meta = read_with_meta(path, "policy file", POLICY_FORMAT)
    if meta.get("version") != POLICY_VERSION:
        raise PolicyFileError(f"{path} has policy format version {meta.get('version')}, "
                              f"this code reads {POLICY_VERSION}")
    return arrays, meta


def check_compatible(meta: Mapping[str, Any], path: str | Path, *, env_id: str, dims: Mapping[str, int],
                     hidden: int, layers: int) -> None:
    """Refuse a policy made for another task or another network shape, saying which."""
    saved = meta.get("config", {})
    if saved.get("env_id") != env_id:
        trained_on = saved.get("env_id")
        raise PolicyFileError(f"{path} was trained on {trained_on}, not {env_id}: pass --env {trained_on}")
    if dict(meta.get("dims", {})) != dict(dims):
        raise PolicyFileError(f"{path} has dimensions {meta.get('dims')}, the task has {dict(dims)}")
    if (saved.get("hidden"), saved.get("layers")) != (hidden, layers):
        raise PolicyFileError(
            f"{path} has networks of {saved.get('layers')}x{saved.get('hidden')}, the configuration asks for "
            f"{layers}x{hidden}: pass --layers {saved.get('layers')} --hidden {saved.get('hidden')}"
        )
