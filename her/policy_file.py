"""Policy files (decision D10): plain arrays in an .npz, written atomically, readable without unpickling.

A policy file holds a learner's network state (for DDPG: the weights of the actor, the critic and their targets)
and the normaliser sums, and a JSON record of the effective configuration, the environment's dimensions and the
acting head that reads the arrays (``her.numpy_actor.HEADS``; files without the record hold DDPG's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from her import atomic
from her.errors import UserError
from her.npz_file import read_with_meta

POLICY_FORMAT = "her-tf2-policy"
POLICY_VERSION = 1


class PolicyFileError(UserError, ValueError):
    """A policy file that is missing, unreadable, or does not fit the task or the networks."""


def save_policy(
    path: str | Path,
    network_state: Mapping[str, np.ndarray],
    config: Mapping[str, Any],
    dims: Mapping[str, int],
    head: str = "deterministic",
    **info: Any,
) -> None:
    """Write a learner's ``network_state`` for acting with its ``head``; ``info`` goes into the record."""
    from her import versions

    # The versions travel with the file, so a policy copied out of its log folder still says what made it.
    meta = {
        "format": POLICY_FORMAT,
        "version": POLICY_VERSION,
        "config": dict(config),
        "dims": dict(dims),
        "head": head,
        "versions": versions.current(),
        **info,
    }
    arrays = dict(network_state)
    arrays["meta"] = np.array(json.dumps(meta))
    atomic.savez(path, arrays)


def resolve_policy_path(path: str | Path) -> Path:
    """A policy file, or a log folder (its policy_best.npz)."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "policy_best.npz"
        if not candidate.exists():  # a run killed before its first copy to the top still has it in a checkpoint
            kept = sorted(path.glob("checkpoints/epoch_*/policy_best.npz"))
            if not kept:
                raise PolicyFileError(f"{path} is a folder without policy_best.npz: pass a policy file or a log folder")
            candidate = kept[-1]
        return candidate
    if not path.exists() and path.suffix != ".npz" and path.with_name(path.name + ".npz").exists():
        return path.with_name(path.name + ".npz")  # runs/push/policy_best means runs/push/policy_best.npz
    if not path.exists():
        raise PolicyFileError(f"policy file {path} does not exist: pass a policy .npz or a log folder")
    return path


def read_policy(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of a policy file; any problem is a one-line PolicyFileError."""
    path = resolve_policy_path(path)
    arrays, meta = read_with_meta(path, "policy file", POLICY_FORMAT, PolicyFileError)
    if meta.get("version") != POLICY_VERSION:
        raise PolicyFileError(
            f"{path} has policy format version {meta.get('version')}, this code reads {POLICY_VERSION}"
        )
    broken = [
        name for name, array in arrays.items() if np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all()
    ]
    if broken:  # training never saves such a policy (it stops first), so the file was damaged or edited
        raise PolicyFileError(
            f"{path} holds NaN or infinite values in {broken[0]}: it cannot act; use another policy file"
        )
    return arrays, meta


def check_compatible(
    meta: Mapping[str, Any],
    path: str | Path,
    *,
    env_id: str,
    dims: Mapping[str, int],
    hidden: int,
    layers: int,
    layer_norm: bool = False,
    learner: str = "ddpg",
) -> None:
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
    saved_learner = saved.get("learner", "ddpg")  # files from before the key were DDPG's
    if saved_learner != learner:
        raise PolicyFileError(
            f"{path} was trained by the {saved_learner} learner, the configuration asks for "
            f"{learner}: pass --learner {saved_learner}"
        )
    saved_norm = bool(saved.get("layer_norm", False))  # files from before the key trained without it
    if saved_norm != layer_norm:
        raise PolicyFileError(
            f"{path} was trained with layer_norm {int(saved_norm)}, the configuration asks for "
            f"{int(layer_norm)}: pass --layer_norm {int(saved_norm)}"
        )


def check_arrays(
    arrays: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], path: str | Path, meta: Mapping[str, Any]
) -> None:
    """Refuse a policy whose arrays are not the ones the networks its record describes hold (a file edited, or
    pieced together): loading them would fail deep inside the learner."""
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    wrong = [key for key in sorted(set(expected) & set(arrays)) if arrays[key].shape != expected[key].shape]
    if not (missing or extra or wrong):
        return
    saved = meta.get("config", {}) if isinstance(meta.get("config"), Mapping) else {}
    if missing:
        detail = f"it lacks {missing[0]}"
    elif extra:
        detail = f"it holds {extra[0]}, which they do not have"
    else:
        detail = f"{wrong[0]} is {arrays[wrong[0]].shape}, not {expected[wrong[0]].shape}"
    raise PolicyFileError(
        f"{path} records networks of learner {saved.get('learner', 'ddpg')}, layer_norm "
        f"{int(bool(saved.get('layer_norm', False)))}, but its arrays are not theirs ({detail}): "
        "the file was edited or damaged; use another policy file"
    )
