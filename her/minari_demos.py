"""Demonstrations as Minari datasets (Farama's format for offline data), beside this project's ``.npz``.

One Minari episode per demo: ``observations`` {observation, achieved_goal, desired_goal} ``(T+1, dim)``,
``actions (T, dim_u)``, the env's own ``rewards (T,)``, ``truncations`` true at the last step, and ``infos``
with one entry per observation (the first for the reset, as Minari's DataCollector records them):
``is_success (T+1,)`` and, where the demos have them, the simulator states as ``sim_state/<name> (T+1, size)``.
Exporting a demo file and importing the dataset (``her.demo_convert``) gives back every array exactly: float32
values survive the float64 of Fetch's observation space unchanged.

Minari is an optional extra (``pip install 'her-tf2[minari]'``); nothing here imports it until it is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from her.errors import UserError, WriteError

STATES = "sim_state"  # the infos key of the simulator states (``state/<name>`` in a demo .npz)
# Minari's (namespace/)name-vN, the namespace itself may hold slashes: her/FetchPush/expert-100-v0.
_ID = re.compile(r"^(?:[-\w][-\w/]*[-\w]+/)?[-\w]+?-v\d+$")


class MinariError(UserError, ValueError):
    """A Minari dataset that cannot be written or read; the message says what to do."""


def _minari():
    try:
        import minari
    except ImportError:
        raise MinariError(
            "Minari is not installed: pip install 'her-tf2[minari]' (or pip install 'minari[hdf5]')"
        ) from None
    return minari


def is_dataset_id(text: str) -> bool:
    """Whether ``text`` reads as a Minari dataset id (``her/FetchPush/expert-v0``) rather than a file name."""
    return bool(_ID.match(text)) and not text.endswith(".npz")


def is_dataset_dir(path: Path) -> bool:
    """A dataset's folder (holding ``data/metadata.json``) or its ``data`` folder."""
    return path.is_dir() and ((path / "data" / "metadata.json").is_file() or (path / "metadata.json").is_file())


def looks_like_dataset(source: str | Path) -> bool:
    path = Path(source)
    return is_dataset_dir(path) or (not path.exists() and is_dataset_id(str(source)))


def _is_success(env, achieved: np.ndarray, goal: np.ndarray) -> float:
    # Fetch's reset info is empty; the reset's entry is what the env would have said of that first observation.
    check = getattr(env.unwrapped, "_is_success", None)
    return float(check(achieved, goal)) if check is not None else 0.0


def write_dataset(
    episodes: Mapping[str, np.ndarray],
    env_id: str,
    dataset_id: str,
    *,
    description: str,
    env_kwargs: Mapping | None = None,
) -> Path:
    """Write demo ``episodes`` (``her.demo`` layout) as the local Minari dataset ``dataset_id``; its folder.

    Rewards are the env's ``compute_reward``; the dataset's env spec is that of ``env_id``, so
    ``dataset.recover_environment()`` gives the env the demos were made in. The dataset is written under a
    hidden folder of the store and renamed to its id once whole: a kill, a full disk or a second writer of the
    same id never leaves a dataset that looks whole but is not.
    """
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    from her.envs import make_env

    folder = check_new_id(dataset_id)
    root = _local_path("")
    _check_space(root, episodes)
    env = make_env(env_id, env_kwargs=env_kwargs)
    raw: Any = env.unwrapped  # a goal env: compute_reward is not part of gym.Env
    try:
        buffers = []
        for e in range(len(episodes["u"])):
            o, ag, g, u = (np.asarray(episodes[key][e]) for key in ("o", "ag", "g", "u"))
            T = len(u)
            success = np.concatenate([[_is_success(env, ag[0], g[0])], episodes["info_is_success"][e, :, 0]])
            infos: dict = {"is_success": success.astype(np.float64)}
            states = {
                key.removeprefix("state/"): np.asarray(value[e], np.float64)
                for key, value in episodes.items()
                if key.startswith("state/")
            }
            if states:
                infos[STATES] = states
            buffers.append(
                EpisodeBuffer(
                    id=e,
                    # The goal is fixed within an episode: the last observation's desired goal is the last step's.
                    observations={
                        "observation": o.astype(np.float64),
                        "achieved_goal": ag.astype(np.float64),
                        "desired_goal": np.concatenate([g, g[-1:]]).astype(np.float64),
                    },
                    actions=u.astype(np.float32),
                    rewards=np.asarray(raw.compute_reward(ag[1:], g, None), np.float64).reshape(T),
                    terminations=np.zeros(T, bool),
                    truncations=np.arange(T) == T - 1,
                    infos=infos,
                )
            )
        from her.versions import __version__

        staging = root / f".her-partial-{os.getpid()}-{id(buffers):x}"
        try:
            staging.mkdir()
            with _store(staging), warnings.catch_warnings():  # its advice to name an author, e-mail, permalink
                warnings.simplefilter("ignore", UserWarning)
                minari.create_dataset_from_buffers(
                    dataset_id,
                    buffers,
                    env=env.spec,
                    eval_env=env.spec,
                    algorithm_name="her-tf2 scripted expert",
                    code_permalink=f"her-tf2 {__version__}",
                    description=description,
                    data_format="hdf5",
                )
            _publish(staging / dataset_id, folder, dataset_id)
        except OSError as err:
            raise WriteError(
                f"cannot write Minari dataset {dataset_id} in {root} ({err.strerror or err}): "
                "nothing was written under its id; free some space or choose another "
                "MINARI_DATASETS_PATH"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        env.close()
    return folder


def _check_space(root: Path, episodes: Mapping[str, np.ndarray]) -> None:
    # HDF5 can crash the process (SIGSEGV) on a full disk instead of raising: refuse before writing a byte.
    needed = 2 * sum(np.asarray(a).size for a in episodes.values()) * 8 + (1 << 20)  # float64, and headroom
    free = shutil.disk_usage(root).free
    if needed > free:
        raise WriteError(
            f"the Minari store {root} has {free >> 20} MiB free, and the dataset needs about "
            f"{needed >> 20} MiB: free some space or set MINARI_DATASETS_PATH to a larger disk"
        )


@contextlib.contextmanager
def _store(root: Path) -> Iterator[None]:
    """Minari's store is ``MINARI_DATASETS_PATH``, read at every call: point it at ``root`` for the block."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if before is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def _publish(staged: Path, folder: Path, dataset_id: str) -> None:
    """Rename a whole dataset to its id; a writer that got there first keeps it."""
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.namespace import create_namespace, list_local_namespaces

    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder)  # claims the id: of two writers, exactly one makes it
    except FileExistsError:
        raise MinariError(
            f"Minari dataset {dataset_id} exists already ({folder}): it was written meanwhile by "
            "another process; choose another id"
        ) from None
    for entry in staged.iterdir():
        os.rename(entry, folder / entry.name)
    namespace = parse_dataset_id(dataset_id)[0]
    if namespace is not None and namespace not in list_local_namespaces():
        with contextlib.suppress(ValueError):  # created meanwhile by another writer
            create_namespace(namespace)


def check_new_id(dataset_id: str) -> Path:
    """The folder a new dataset ``dataset_id`` would have; MinariError if the id is malformed or taken."""
    if not is_dataset_id(dataset_id):
        raise MinariError(
            f"{dataset_id!r} is not a Minari dataset id: use (namespace/)name-vN with letters, digits, "
            "- and _ only, e.g. her/FetchPush/expert-100-v0"
        )
    _minari()  # a clear line if it is missing
    folder = _local_path(dataset_id)
    if folder.exists():
        raise MinariError(
            f"Minari dataset {dataset_id} exists already ({folder}): choose another id, or delete "
            f"it with: minari delete {dataset_id}"
        )
    return folder


def _local_path(dataset_id: str) -> Path:
    from minari.storage import get_dataset_path

    try:  # it creates the store's root
        return Path(get_dataset_path(dataset_id))
    except OSError as err:
        root = os.environ.get("MINARI_DATASETS_PATH") or "~/.minari/datasets"
        raise MinariError(
            f"the Minari store {root} cannot be created ({err.strerror or err}): set "
            "MINARI_DATASETS_PATH to a folder you can write"
        ) from None


def _data_folder(source: str | Path) -> Path:
    """The folder holding the ``metadata.json`` of a local id or a dataset folder; MinariError if there is none."""
    path = Path(source)
    if is_dataset_dir(path):
        return path / "data" if (path / "data" / "metadata.json").is_file() else path
    data = _local_path(str(source)) / "data"
    if not (data / "metadata.json").is_file():
        raise MinariError(
            f"no Minari dataset {source} in {_local_path('')}: list the local ones with "
            f"minari list local, or download it with minari download {source}"
        )
    return data


def _checked_metadata(data: Path, source: str | Path) -> dict[str, Any]:
    """A dataset's metadata, refused unless it records the spaces: without them Minari makes the env the
    dataset's ``env_spec`` names (any entry point, any kwargs) to learn them, and that runs code the dataset chose."""
    try:
        metadata = json.loads((data / "metadata.json").read_text())
    except (OSError, ValueError) as err:
        raise MinariError(
            f"Minari dataset {source}: its metadata.json cannot be read ({type(err).__name__}: "
            f"{err}): it is damaged or not a Minari dataset"
        ) from None
    if not isinstance(metadata, dict):
        raise MinariError(f"Minari dataset {source}: its metadata.json is not a JSON object: it is damaged")
    missing = [key for key in ("observation_space", "action_space") if not isinstance(metadata.get(key), str)]
    if missing:
        raise MinariError(
            f"Minari dataset {source} does not record its {' and '.join(missing)}, and Minari "
            "would make the env its metadata names to learn them, running code of the dataset's "
            "choosing: it is not read; pass a dataset written with its spaces (as Minari 0.5 and "
            "her-demos write them), or an .npz"
        )
    if metadata.get("data_format", "hdf5") not in ("hdf5", "arrow"):
        raise MinariError(
            f"Minari dataset {source} has data_format {metadata.get('data_format')!r}, not hdf5 or "
            "arrow: it is damaged or not a Minari dataset"
        )
    total = metadata.get("total_episodes")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise MinariError(f"Minari dataset {source}: its metadata.json gives {total!r} episodes: it is damaged")
    return metadata


def _damaged(source: str | Path, err: BaseException) -> MinariError:
    text = str(err).strip().splitlines()
    reason = f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
    return MinariError(f"Minari dataset {source} cannot be read ({reason}): it is damaged or not a Minari dataset")


@dataclass
class Dataset:
    """An opened dataset: Minari's object, its episode count and the env id its metadata names."""

    source: str | Path
    minari: Any
    total: int
    env_id: str | None


def open_dataset(source: str | Path) -> Dataset:
    """A local id or a dataset folder, checked before Minari builds anything from it; MinariError if unusable."""
    minari = _minari()
    data = _data_folder(source)
    _checked_metadata(data, source)
    try:
        dataset = minari.MinariDataset(data)
        spec = dataset.spec.env_spec
        env_id = spec.id if spec is not None else None
        total = int(dataset.total_episodes)
    except Exception as err:  # noqa: BLE001 - Minari and h5py raise many kinds on a damaged dataset
        raise _damaged(source, err) from None
    if env_id is not None and ":" in env_id:  # gym.make("module:Id") imports module
        raise MinariError(
            f"Minari dataset {source} names its env {env_id!r}, which would import module "
            f"{env_id.partition(':')[0]} wherever the demos are used: it is not read; pass a dataset "
            "made in a registered env"
        )
    return Dataset(source, dataset, total, env_id)


def read_episodes(dataset: Dataset, count: int | None = None) -> dict[str, np.ndarray]:
    """The first ``count`` (default all) episodes of an opened dataset in the demo layout: float32
    ``(E, T or T+1, dim)``, states float64. Only those episodes are read; each is checked to hold what a demo
    needs in arrays of one shape, else MinariError."""
    source = dataset.source
    count = dataset.total if count is None else min(count, dataset.total)
    if count < 1:
        raise MinariError(f"Minari dataset {source} holds no episodes")
    out: dict[str, np.ndarray] = {}
    try:
        for e, episode in enumerate(dataset.minari.iterate_episodes(range(count))):
            arrays = _episode_arrays(episode, source, e)
            if not out:
                out = {key: np.empty((count, *value.shape), value.dtype) for key, value in arrays.items()}
            _check_like_first(arrays, out, source, e)
            for key, value in arrays.items():
                out[key][e] = value
    except MinariError:
        raise
    except Exception as err:  # noqa: BLE001 - a truncated file, an episode the metadata claims but lacks, ...
        raise _damaged(source, err) from None
    return out


def _episode_arrays(episode: Any, source: str | Path, e: int) -> dict[str, np.ndarray]:
    """One episode's arrays in the demo layout, each checked to be numbers of the right rank and length."""
    obs = _goal_observations(episode, source)
    actions = np.asarray(episode.actions)
    if actions.ndim != 2 or actions.dtype.kind not in "biuf":
        raise MinariError(
            f"Minari dataset {source}: the actions of episode {e} are {actions.dtype} "
            f"{actions.shape}, not a (steps, size) array of numbers: it cannot be demos"
        )
    T = len(actions)
    named = {
        "o": obs["observation"],
        "ag": obs["achieved_goal"],
        "g": obs["desired_goal"],
        "info_is_success": episode.infos["is_success"],
    }
    states = episode.infos.get(STATES, {})
    if not isinstance(states, dict):
        raise MinariError(f"Minari dataset {source}: infos/{STATES} of episode {e} is not a group of arrays")
    named.update({f"state/{name}": value for name, value in states.items()})
    arrays = {"u": actions.astype(np.float32)}
    for key, value in named.items():
        array = np.asarray(value)
        rank = 1 if key == "info_is_success" else 2
        if array.dtype.kind not in "biuf" or array.ndim != rank or len(array) != T + 1:
            raise MinariError(
                f"Minari dataset {source}: '{key}' of episode {e} is {array.dtype} {array.shape}, but "
                f"an episode of {T} steps needs {T + 1} rows of numbers: it cannot be demos"
            )
        if key == "g":
            array = array[:-1]
        elif key == "info_is_success":
            array = array[1:, None]
        arrays[key] = array.astype(np.float64 if key.startswith("state/") else np.float32)
    return arrays


def _check_like_first(
    arrays: Mapping[str, np.ndarray], out: Mapping[str, np.ndarray], source: str | Path, e: int
) -> None:
    if arrays["u"].shape[0] != out["u"].shape[1]:
        raise MinariError(
            f"Minari dataset {source} has episodes of {out['u'].shape[1]} and {len(arrays['u'])} "
            "steps, and demos need one length, the task's T: keep the episodes of one length"
        )
    for key in sorted(set(arrays) | set(out)):
        if key not in arrays or key not in out or arrays[key].shape != out[key].shape[1:]:
            first = out[key].shape[1:] if key in out else "nothing"
            this = arrays[key].shape if key in arrays else "nothing"
            raise MinariError(
                f"Minari dataset {source}: '{key}' is {this} in episode {e} but {first} in episode "
                "0: its episodes were not made in one env, so they cannot be demos"
            )


def _goal_observations(episode: Any, source: str | Path) -> dict[str, np.ndarray]:
    obs = episode.observations
    if not isinstance(obs, dict) or not {"observation", "achieved_goal", "desired_goal"} <= set(obs):
        raise MinariError(
            f"Minari dataset {source} does not hold goal observations (observation, "
            "achieved_goal, desired_goal): it was not made in a goal env"
        )
    if not isinstance(episode.infos, dict) or "is_success" not in episode.infos:
        raise MinariError(f"Minari dataset {source} records no is_success in its infos, which demos need")
    return obs


def read_dataset(source: str | Path, count: int | None = None) -> tuple[dict[str, np.ndarray], str | None]:
    """The first ``count`` (default all) episodes of a Minari dataset (a local id or a dataset folder) in the
    demo layout, and its env id; MinariError for anything a demo cannot be made of."""
    dataset = open_dataset(source)
    return read_episodes(dataset, count), dataset.env_id
