"""Converting demonstrations between this project's .npz and a Minari dataset (``her-demos --convert``): each
side is read in full through ``her.demo.load_demos``'s checks before anything is written."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from her import minari_demos
from her.demo import DEMO_READ_ERRORS, DemoFileError, load_demos, save_demos
from her.minari_demos import MinariError
from her.npz_file import check_npz_members


def _peek(source: str | Path) -> tuple[str, dict[str, int], int, int, bool]:
    """env id, dims, T, episodes and whether states are held, of a demo .npz or a Minari dataset (whose first
    episode alone is read: ``load_demos`` reads and checks them all)."""
    if minari_demos.looks_like_dataset(source):
        dataset = minari_demos.open_dataset(source)
        first = minari_demos.read_episodes(dataset, 1)
        env_id, n = dataset.env_id, dataset.total
        shapes = {key: (n, *first[key].shape[1:]) for key in ("o", "g", "u")}
        states = any(key.startswith("state/") for key in first)
    else:
        try:
            if zipfile.is_zipfile(source):  # before np.load, which allocates whatever a member's header claims
                check_npz_members(source)
            with np.load(source, allow_pickle=False) as data:
                env_id = str(data["env_id"][()]) if "env_id" in data.files else None
                shapes = {key: data[key].shape for key in ("o", "g", "u")}
                states = any(key.startswith("state/") for key in data.files)
        except (*DEMO_READ_ERRORS, OSError, AttributeError) as err:  # AttributeError: a lone .npy has no .files
            raise DemoFileError(
                f"{source} is not a demo file ({type(err).__name__}: {err}): pass an .npz made "
                "by her-demos, or a Minari dataset"
            ) from None
    if not env_id:
        raise DemoFileError(f"{source} does not name the env its demos were made in, which the conversion needs")
    if any(len(shape) != 3 for shape in shapes.values()):
        raise DemoFileError(f"{source}: o, g and u are not (episodes, steps, size) arrays: the file is damaged")
    dims = {key: shape[2] for key, shape in shapes.items()}
    return env_id, dims, shapes["u"][1], shapes["u"][0], states


def _load_all(source: str | Path) -> tuple[dict[str, np.ndarray], str]:
    env_id, dims, T, count, states = _peek(source)
    if count < 1:
        raise MinariError(f"{source} holds no episodes: there is nothing to convert")
    return load_demos(source, env_id=env_id, dims=dims, T=T, num_demo=count, need_states=states), env_id


def named_env(env_id: str, source: str | Path, gym_packages: Iterable[str] = ()) -> str:
    """The registered id of the env a file's ``env_id`` names, importing only modules in ``gym_packages``:
    ``gym.make('module:Id')`` would import ``module``, and a file may come from anywhere."""
    from her.envs import resolve_env_id

    packages = list(gym_packages)
    module = env_id.partition(":")[0] if ":" in env_id else None
    if module is not None and module not in packages and module not in sys.modules:
        raise MinariError(
            f"{source} names its env {env_id!r}, and making it would import module {module}; a "
            f"demo file runs no code it names: if you trust it, pass --gym_packages {module}"
        )
    try:
        return resolve_env_id(env_id, packages)
    except ValueError as err:
        raise MinariError(
            f"{source} holds demos of an env that cannot be made here ({err}): if a module of yours "
            "registers it, pass --gym_packages MODULE"
        ) from None


def export_demos(demo_file: str | Path, dataset_id: str, gym_packages: Iterable[str] = ()) -> tuple[int, str, Path]:
    """Write a demo .npz as the Minari dataset ``dataset_id``: (episodes, env id, the dataset's folder).

    The env the file names is made (for its spec and rewards) only if it is registered or ``gym_packages``
    holds its module."""
    minari_demos.check_new_id(dataset_id)  # before reading a large file
    episodes, env_id = _load_all(demo_file)
    env_id = named_env(env_id, demo_file, gym_packages)
    folder = minari_demos.write_dataset(
        episodes, env_id, dataset_id, description=f"converted from {Path(demo_file).name}"
    )
    return len(episodes["u"]), env_id, folder


def import_demos(source: str | Path, output: str | Path) -> tuple[int, str]:
    """Write a Minari dataset (id or folder) as a demo .npz: (episodes, env id)."""
    episodes, env_id = _load_all(source)
    save_demos(output, episodes, env_id)
    return len(episodes["u"]), env_id
