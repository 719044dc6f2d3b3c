"""Demonstrations as Minari datasets (Farama's format for offline data), beside this project's ``.npz``.

One Minari episode per demo: ``observations`` {observation, achieved_goal, desired_goal} ``(T+1, dim)``,
``actions (T, dim_u)``, the env's own ``rewards (T,)``, ``truncations`` true at the last step, and ``infos``
with one entry per observation (the first for the reset, as Minari's DataCollector records them):
``is_success (T+1,)`` and, where the demos have them, the simulator states as ``sim_state/<name> (T+1, size)``.
Exporting a demo file and importing the dataset gives back every array exactly: float32 values survive the
float64 of Fetch's observation space unchanged.

Minari is an optional extra (``pip install 'her-tf2[minari]'``); nothing here imports it until it is used.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from her.errors import UserError

STATES = "sim_state"  # the infos key of the simulator states (``state/<name>`` in a demo .npz)
# Minari's (namespace/)name-vN, the namespace itself may hold slashes: her/FetchPush/expert-100-v0.
_ID = re.compile(r"^(?:[-\w][-\w/]*[-\w]+/)?[-\w]+?-v\d+$")


class MinariError(UserError, ValueError):
    """A Minari dataset that cannot be written or read; the message says what to do."""


def _minari():
    try:
        import minari
    except ImportError:
        raise MinariError("Minari is not installed: pip install 'her-tf2[minari]' (or pip install 'minari[hdf5]')"
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


def write_dataset(episodes: Mapping[str, np.ndarray], env_id: str, dataset_id: str, *,
                  description: str, env_kwargs: Mapping | None = None) -> Path:
    """Write demo ``episodes`` (``her.demo`` layout) as the local Minari dataset ``dataset_id``; its folder.

    Rewards are the env's ``compute_reward``; the dataset's env spec is that of ``env_id``, so
    ``dataset.recover_environment()`` gives the env the demos were made in.
    """
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    from her.envs import make_env

    folder = check_new_id(dataset_id)
    env = make_env(env_id, env_kwargs=env_kwargs)
    raw: Any = env.unwrapped  # a goal env: compute_reward is not part of gym.Env
    try:
        buffers = []
        for e in range(len(episodes["u"])):
            o, ag, g, u = (np.asarray(episodes[key][e]) for key in ("o", "ag", "g", "u"))
            T = len(u)
            success = np.concatenate([[_is_success(env, ag[0], g[0])], episodes["info_is_success"][e, :, 0]])
            infos: dict = {"is_success": success.astype(np.float64)}
            states = {key.removeprefix("state/"): np.asarray(value[e], np.float64)
                      for key, value in episodes.items() if key.startswith("state/")}
            if states:
                infos[STATES] = states
            buffers.append(EpisodeBuffer(
                id=e,
                # The goal is fixed within an episode: the last observation's desired goal is the last step's.
                observations={"observation": o.astype(np.float64), "achieved_goal": ag.astype(np.float64),
                              "desired_goal": np.concatenate([g, g[-1:]]).astype(np.float64)},
                actions=u.astype(np.float32),
                rewards=np.asarray(raw.compute_reward(ag[1:], g, None), np.float64).reshape(T),
                terminations=np.zeros(T, bool),
                truncations=np.arange(T) == T - 1,
                infos=infos,
            ))
        from her import __version__

        try:
            with warnings.catch_warnings():  # its advice to name an author, an e-mail and a permalink
                warnings.simplefilter("ignore", UserWarning)
                minari.create_dataset_from_buffers(
                    dataset_id, buffers, env=env.spec, eval_env=env.spec, algorithm_name="her-tf2 scripted expert",
                    code_permalink=f"her-tf2 {__version__}", description=description, data_format="hdf5")
        except BaseException:  # an interrupted write leaves no dataset that looks whole
            shutil.rmtree(folder, ignore_errors=True)
            raise
    finally:
        env.close()
    return folder


def check_new_id(dataset_id: str) -> Path:
    """The folder a new dataset ``dataset_id`` would have; MinariError if the id is malformed or taken."""
    if not is_dataset_id(dataset_id):
        raise MinariError(f"{dataset_id!r} is not a Minari dataset id: use (namespace/)name-vN with letters, digits, "
                          "- and _ only, e.g. her/FetchPush/expert-100-v0")
    _minari()  # a clear line if it is missing
    folder = _local_path(dataset_id)
    if folder.exists():
        raise MinariError(f"Minari dataset {dataset_id} exists already ({folder}): choose another id, or delete "
                          f"it with: minari delete {dataset_id}")
    return folder


def _local_path(dataset_id: str) -> Path:
    from minari.storage import get_dataset_path

    return Path(get_dataset_path(dataset_id))


def _open(source: str | Path) -> Any:
    """The MinariDataset of a local id or a dataset folder; MinariError if there is none or it cannot be read."""
    minari = _minari()
    path = Path(source)
    try:
        if is_dataset_dir(path):
            return minari.MinariDataset(path / "data" if (path / "data" / "metadata.json").is_file() else path)
        local = _local_path(str(source))
        if not (local / "data" / "metadata.json").is_file():
            raise MinariError(f"no Minari dataset {source} in {_local_path('')}: list the local ones with "
                              f"minari list local, or download it with minari download {source}")
        return minari.load_dataset(str(source))
    except MinariError:
        raise
    except Exception as err:  # noqa: BLE001 - Minari and h5py raise many kinds on a damaged dataset
        raise MinariError(f"Minari dataset {source} cannot be read ({type(err).__name__}: {err}): it is damaged "
                          "or not a Minari dataset") from None


def _goal_observations(episode: Any, source: str | Path) -> dict[str, np.ndarray]:
    obs = episode.observations
    if not isinstance(obs, dict) or not {"observation", "achieved_goal", "desired_goal"} <= set(obs):
        raise MinariError(f"Minari dataset {source} does not hold goal observations (observation, "
                          "achieved_goal, desired_goal): it was not made in a goal env")
    if "is_success" not in episode.infos:
        raise MinariError(f"Minari dataset {source} records no is_success in its infos, which demos need")
    return obs


def _env_id(dataset: Any) -> str | None:
    spec = dataset.spec.env_spec
    return spec.id if spec is not None else None


def read_dataset(source: str | Path) -> tuple[dict[str, np.ndarray], str | None]:
    """The episodes of a Minari dataset (a local id or a dataset folder) in the demo layout, and its env id.

    Episode arrays come back float32 ``(E, T or T+1, dim)``, states float64; a dataset whose episodes differ in
    length or lack what a demo needs raises MinariError.
    """
    dataset = _open(source)
    episodes = list(dataset.iterate_episodes())
    if not episodes:
        raise MinariError(f"Minari dataset {source} holds no episodes")
    lengths = sorted({len(ep.actions) for ep in episodes})
    if len(lengths) > 1:
        raise MinariError(f"Minari dataset {source} has episodes of {lengths[0]} to {lengths[-1]} steps, and demos "
                          "need one length, the task's T: keep the episodes of one length")
    out: dict[str, list] = {key: [] for key in ("o", "ag", "g", "u", "info_is_success")}
    for ep in episodes:
        obs = _goal_observations(ep, source)
        out["o"].append(obs["observation"])
        out["ag"].append(obs["achieved_goal"])
        out["g"].append(obs["desired_goal"][:-1])
        out["u"].append(ep.actions)
        out["info_is_success"].append(np.asarray(ep.infos["is_success"])[1:, None])
        for name, value in ep.infos.get(STATES, {}).items():
            out.setdefault(f"state/{name}", []).append(value)
    arrays = {key: np.stack(value).astype(np.float64 if key.startswith("state/") else np.float32)
              for key, value in out.items()}
    return arrays, _env_id(dataset)


def _peek(source: str | Path) -> tuple[str, dict[str, int], int, int, bool]:
    """env id, dims, T, episodes and whether states are held, of a demo .npz or a Minari dataset (whose first
    episode alone is read: ``load_demos`` reads and checks them all)."""
    from her.demo import DEMO_READ_ERRORS, DemoFileError

    if looks_like_dataset(source):
        dataset = _open(source)
        first = next(dataset.iterate_episodes([0]), None) if dataset.total_episodes else None
        if first is None:
            raise MinariError(f"Minari dataset {source} holds no episodes")
        obs, n, T = _goal_observations(first, source), dataset.total_episodes, len(first.actions)
        env_id = _env_id(dataset)
        shapes = {"o": (n, T + 1, obs["observation"].shape[-1]), "g": (n, T, obs["desired_goal"].shape[-1]),
                  "u": (n, *first.actions.shape)}
        states = STATES in first.infos
    else:
        try:
            with np.load(source, allow_pickle=False) as data:
                env_id = str(data["env_id"][()]) if "env_id" in data.files else None
                shapes = {key: data[key].shape for key in ("o", "g", "u")}
                states = any(key.startswith("state/") for key in data.files)
        except (*DEMO_READ_ERRORS, OSError) as err:
            raise DemoFileError(f"{source} is not a demo file ({type(err).__name__}: {err}): pass an .npz made "
                                "by her-demos, or a Minari dataset") from None
    if not env_id:
        raise DemoFileError(f"{source} does not name the env its demos were made in, which the conversion needs")
    if any(len(shape) != 3 for shape in shapes.values()):
        raise DemoFileError(f"{source}: o, g and u are not (episodes, steps, size) arrays: the file is damaged")
    dims = {key: shape[2] for key, shape in shapes.items()}
    return env_id, dims, shapes["u"][1], shapes["u"][0], states


def _load_all(source: str | Path) -> tuple[dict[str, np.ndarray], str]:
    from her.demo import load_demos

    env_id, dims, T, count, states = _peek(source)
    return load_demos(source, env_id=env_id, dims=dims, T=T, num_demo=count, need_states=states), env_id


def export_demos(demo_file: str | Path, dataset_id: str) -> tuple[int, str, Path]:
    """Write a demo .npz as the Minari dataset ``dataset_id``: (episodes, env id, the dataset's folder)."""
    episodes, env_id = _load_all(demo_file)
    folder = write_dataset(episodes, env_id, dataset_id, description=f"converted from {Path(demo_file).name}")
    return len(episodes["u"]), env_id, folder


def import_demos(source: str | Path, output: str | Path) -> tuple[int, str]:
    """Write a Minari dataset (id or folder) as a demo .npz: (episodes, env id)."""
    from her.demo import save_demos

    episodes, env_id = _load_all(source)
    save_demos(output, episodes, env_id)
    return len(episodes["u"]), env_id
