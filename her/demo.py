"""Demonstration files (decision D11): the plain-array format the generator writes, and a loader that checks it.

A file holds whole episodes in the replay buffer's layout (decision D1): ``o, ag: (E, T+1, dim)``,
``g, u: (E, T, dim)``, ``info_is_success: (E, T, 1)``, float32, plus ``env_id``, ``format`` and ``version``.
Version 2 adds the simulator state of each observation, ``state/<name>: (E, T+1, size)`` float64 (the
components of a ``her.env_state`` backend and ``state/goal``, the env's goal unrounded), so that an env can be restored
to any demo state. Versions 1 and 2 are read; the reference's pickled layout (§11) only on explicit request.
"""

from __future__ import annotations

import pickle
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from her import atomic
from her.envs import base_task, task_name
from her.errors import UserError
from her.npz_file import NPZ_READ_ERRORS, check_npz_members
from her.replay_buffer import episode_shapes

FORMAT = "her-tf2-demos"
VERSION = 2  # 2: adds the state/ keys; 1 is still read
NO_STATES_KEY = "no_states"  # in a version-1 file from --play or her-demos: why its env's states were not saved
EPISODE_KEYS = ("o", "ag", "g", "u", "info_is_success")
LEGACY_KEYS = ("acs", "obs", "info")
STATE_PREFIX = "state/"
GOAL_KEY = STATE_PREFIX + "goal"  # the env's float64 goal: g holds it rounded to float32
GENERATOR = "her-demos"

# What reading a damaged demo file can raise beyond what any .npz can: KeyError for a missing array (her.demo_convert
# reads o, g and u before any check). Nothing read under this tuple unpickles (allow_pickle=False; the legacy
# layout has its own handler), so UnpicklingError is only a guard.
DEMO_READ_ERRORS = (*NPZ_READ_ERRORS, KeyError, pickle.UnpicklingError)


class DemoFileError(UserError, ValueError):
    """A demonstration file that cannot be used; the message says what is wrong and what to do."""


def save_demos(
    path: str | Path,
    episodes: Mapping[str, np.ndarray],
    env_id: str,
    *,
    compresslevel: int | None = 1,
    no_states: str = "",
) -> None:
    """Write ``episodes`` (the keys of EPISODE_KEYS, and any ``state/`` keys) for ``env_id`` to exactly ``path``.

    The write is atomic. Episode arrays are stored as float32, states as float64 (restoring needs every bit).
    ``compresslevel`` 1-9 deflates the archive (level 1 is nearly as small as 9 for these arrays); None stores it.
    A file without states is version 1; ``no_states`` records why it has none, for the error that asks for them.
    """
    arrays = {key: np.asarray(episodes[key], dtype=np.float32) for key in EPISODE_KEYS}
    arrays.update(
        {key: np.asarray(value, dtype=np.float64) for key, value in episodes.items() if key.startswith(STATE_PREFIX)}
    )
    arrays["env_id"] = np.array(env_id)
    arrays["format"] = np.array(FORMAT)
    has_states = any(key.startswith(STATE_PREFIX) for key in arrays)
    arrays["version"] = np.array(VERSION if has_states else 1)
    if no_states and not has_states:
        arrays[NO_STATES_KEY] = np.array(no_states)
    atomic.savez(path, arrays, compresslevel=compresslevel)


class EpisodeStates:
    """The simulator state (``her.env_state``) and the env's goal at every observation of one episode."""

    def __init__(self) -> None:
        self.states: list[dict[str, np.ndarray]] = []
        self.goals: list[np.ndarray] = []

    @staticmethod
    def track(env) -> None:
        """Before the episode's reset (ValueError for an env whose states cannot be saved)."""
        from her import env_state

        env_state.track(env)

    def record(self, env) -> None:
        """After the reset and after each step."""
        from her import env_state

        self.states.append(env_state.get_state(env))
        self.goals.append(env_state.get_goal(env))

    def arrays(self) -> dict[str, np.ndarray]:
        """``state/<name>: (T+1, size)`` and ``state/goal: (T+1, dim_g)``, float64."""
        arrays = {STATE_PREFIX + name: np.stack([state[name] for state in self.states]) for name in self.states[0]}
        arrays[GOAL_KEY] = np.stack(self.goals)
        return arrays


def check_demo_file(path: str | Path) -> None:
    """Raise DemoFileError unless ``path`` is a file or a Minari dataset (a cheap check, before any loading)."""
    path = Path(path)
    from her import minari_demos

    if not path.is_file() and not minari_demos.looks_like_dataset(path):
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise DemoFileError(f"demo file {path} {problem}: pass an .npz made by {GENERATOR}, or a Minari dataset")


def load_demos(
    path: str | Path,
    *,
    env_id: str,
    dims: Mapping[str, int],
    T: int,
    num_demo: int,
    allow_legacy: bool = False,
    need_states: bool = False,
) -> dict[str, np.ndarray]:
    """The first ``num_demo`` episodes of a demo file, checked against the task, as float32 arrays.

    Returns ``{o, ag, g, u, info_is_success}`` shaped like ``RolloutWorker.generate_rollouts``; with
    ``need_states`` also the float64 ``state/`` arrays (``demo_state`` picks one out), and a file without them
    (version 1, legacy) raises DemoFileError with the command that regenerates it.
    Actions are clipped to [-1, 1] without complaint: the env clips every action before applying it, so the
    clipped action is the one that was executed, and the tanh actor can never output more (the reference's
    own files hold unclipped actions, §15). Anything else that is wrong raises DemoFileError.
    ``allow_legacy`` admits the reference's pickled layout; unpickling can run code from the file.
    """
    path = Path(path)
    if num_demo < 1:
        raise DemoFileError(f"num_demo must be at least 1, got {num_demo}")
    from her import minari_demos

    if minari_demos.looks_like_dataset(path):
        return _checked(path, _read_dataset(path, env_id, dims, T, num_demo, need_states))
    expected = episode_shapes(dims, T)
    check_demo_file(path)

    try:
        if zipfile.is_zipfile(path):
            check_npz_members(path)
        data = np.load(path, allow_pickle=False)
    except DEMO_READ_ERRORS as err:
        # np.load takes anything that is not a zip or .npy for a pickle, refused here by allow_pickle=False;
        # numpy's own message would suggest unpickling, which is exactly what must not be done with it.
        reason = "a pickle or not a numpy file at all" if "pickle" in str(err) else _brief(err)
        raise DemoFileError(
            f"{path} is not a readable .npz archive ({reason}): pass an .npz made by {GENERATOR}"
        ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DemoFileError(
            f"{path} holds a single .npy array, not an .npz archive of episodes: make one with {GENERATOR}"
        )
    with data:
        keys = set(data.files)
        if set(LEGACY_KEYS) <= keys and not set(EPISODE_KEYS) <= keys:
            if need_states:  # checked before unpickling anything
                raise _no_states(path, "is in the reference's legacy layout", env_id, num_demo)
            if not allow_legacy:
                raise DemoFileError(
                    f"{path} is in the reference's legacy layout (acs/obs/info arrays of pickled dicts), and "
                    f"unpickling can run code stored in the file: pass --demo_legacy 1 if you trust it, or "
                    f"regenerate the demos with {GENERATOR}"
                )
            episodes: dict[str, np.ndarray] | None = None
        else:
            episodes = _read_plain(data, path, env_id, expected, T, num_demo)
            if need_states:
                episodes.update(_read_states(data, path, env_id, dims, T, num_demo))
    if episodes is None:
        episodes = _read_legacy(path, env_id, expected, T, num_demo)
    return _checked(path, episodes)


def _read_dataset(
    path: Path, env_id: str, dims: Mapping[str, int], T: int, num_demo: int, need_states: bool
) -> dict[str, np.ndarray]:
    """A Minari dataset's episodes, through the same checks as a file's (its arrays read like archive members)."""
    from her import minari_demos

    dataset = minari_demos.open_dataset(path)
    if dataset.env_id and not _same_task(dataset.env_id, env_id):  # said before the count, as for a file
        _read_plain(
            _Arrays(env_id=np.array(dataset.env_id), **{key: np.zeros((0, 0, 0)) for key in EPISODE_KEYS}),
            path,
            env_id,
            episode_shapes(dims, T),
            T,
            num_demo,
        )
    _check_count(path, dataset.total, num_demo)  # before reading any episode; then only the episodes used
    arrays, made_for = minari_demos.read_episodes(dataset, num_demo), dataset.env_id
    has_states = any(key.startswith(STATE_PREFIX) for key in arrays)
    data = _Arrays(arrays, format=np.array(FORMAT), version=np.array(VERSION if has_states else 1))
    if made_for:
        data["env_id"] = np.array(made_for)
    episodes = _read_plain(data, path, env_id, episode_shapes(dims, T), T, num_demo)
    if need_states:
        episodes.update(_read_states(data, path, env_id, dims, T, num_demo))
    return episodes


class _Arrays(dict):
    """Arrays in memory, read like an ``np.load`` archive (``files``, ``[key]``)."""

    @property
    def files(self) -> list[str]:
        return list(self)


def _checked(path: Path, episodes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``episodes`` with actions clipped, after refusing NaN and infinite values."""
    for key, array in episodes.items():
        bad = ~np.isfinite(array)
        if bad.any():
            eps = np.unique(np.nonzero(bad)[0])
            shown = ", ".join(str(e) for e in eps[:5]) + (", ..." if len(eps) > 5 else "")
            raise DemoFileError(
                f"{path}: '{key}' holds NaN or infinite values in episode(s) {shown}: "
                f"regenerate the file or drop those episodes"
            )
    np.clip(episodes["u"], -1.0, 1.0, out=episodes["u"])
    return episodes


def _brief(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _same_task(a: str, b: str) -> bool:
    # Versions (-vN) and the dense-reward variants share observations and dynamics; the reward is recomputed.
    return base_task(a) == base_task(b)


def _read(data: np.lib.npyio.NpzFile, path: Path, key: str) -> np.ndarray:
    try:
        return data[key]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DemoFileError(
                f"{path}: '{key}' holds pickled objects, not numbers: make the file with {GENERATOR}"
            ) from None
        raise DemoFileError(f"{path}: '{key}' cannot be read ({_brief(err)}): the file is damaged") from None
    except DEMO_READ_ERRORS as err:
        raise DemoFileError(f"{path}: '{key}' cannot be read ({_brief(err)}): the file is damaged") from None


def _scalar_text(array: np.ndarray) -> str | None:
    return str(array[()]) if array.shape == () and array.dtype.kind == "U" else None


def _read_plain(data, path: Path, env_id: str, expected: dict, T: int, num_demo: int) -> dict[str, np.ndarray]:
    keys = set(data.files)
    missing = [key for key in EPISODE_KEYS if key not in keys]
    if missing:
        raise DemoFileError(
            f"{path} lacks {', '.join(missing)} (it has {', '.join(sorted(keys)) or 'nothing'}), "
            f"so it is not a demo file: make one with {GENERATOR}"
        )
    if "format" in keys and _scalar_text(_read(data, path, "format")) != FORMAT:
        raise DemoFileError(f"{path} is not a {FORMAT} file: make one with {GENERATOR}")
    if "version" in keys:
        version = _read(data, path, "version")
        if version.shape != () or version.dtype.kind not in "iu" or int(version) > VERSION:
            raise DemoFileError(
                f"{path} has demo format version {version}, and this code reads up to {VERSION}: "
                f"update the code or regenerate the file"
            )

    made_for = _scalar_text(_read(data, path, "env_id")) if "env_id" in keys else None
    if made_for is not None and not _same_task(made_for, env_id):
        raise DemoFileError(
            f"{path} holds demonstrations for {made_for}, but this run is on {env_id}: pass a demo "
            f"file for {task_name(env_id)} ({GENERATOR} --env {task_name(env_id)})"
        )

    arrays = {}
    for key in EPISODE_KEYS:
        array = _read(data, path, key)
        if array.dtype.kind not in "biuf":
            raise DemoFileError(f"{path}: '{key}' has dtype {array.dtype}, not numbers: make the file with {GENERATOR}")
        if array.ndim != 3 or array.shape[1:] != expected[key]:
            origin = f"; the file was made for {made_for}" if made_for else ""
            raise DemoFileError(
                f"{path}: '{key}' has shape {array.shape}, but {env_id} with T={T} "
                f"needs (episodes, {', '.join(map(str, expected[key]))}){origin}"
            )
        arrays[key] = array
    counts = {key: len(array) for key, array in arrays.items()}
    if len(set(counts.values())) != 1:
        listed = ", ".join(f"{key}: {n}" for key, n in counts.items())
        raise DemoFileError(f"{path}: the arrays hold different numbers of episodes ({listed}): the file is damaged")
    _check_count(path, counts["u"], num_demo)
    # Copies, so the caller owns writable float32 arrays and nothing refers back to the archive.
    return {key: np.array(array[:num_demo], dtype=np.float32) for key, array in arrays.items()}


def _check_count(path: Path, held: int, num_demo: int) -> None:
    if held == 0:  # --num_demo 0 is refused: say what would work
        raise DemoFileError(
            f"{path} holds no episodes: generate some with {GENERATOR} --num_episodes {num_demo}, "
            "or train without --demo_file"
        )
    if num_demo > held:
        raise DemoFileError(
            f"{path} holds {held} episodes but num_demo is {num_demo}: pass --num_demo {held} "
            f"(or fewer), or generate more with {GENERATOR} --num_episodes {num_demo}"
        )


def _read_legacy(path: Path, env_id: str, expected: dict, T: int, num_demo: int) -> dict[str, np.ndarray]:
    """The reference's layout (§11): acs (E, T, 4), obs (E, T+1) and info (E, T) of dicts; ragged rows allowed."""
    try:
        with np.load(path, allow_pickle=True) as data:
            acs, obs, info = data["acs"], data["obs"], data["info"]
    except Exception as err:  # unpickling can fail in any way a pickle chooses (missing modules, bad opcodes)
        raise DemoFileError(
            f"{path}: the legacy arrays cannot be read ({_brief(err)}): the file is damaged "
            f"or not from the reference's generator"
        ) from None
    if acs.ndim == 0 or obs.ndim == 0 or info.ndim == 0 or not len(acs) == len(obs) == len(info):
        raise DemoFileError(
            f"{path}: legacy acs, obs and info disagree on the number of episodes "
            f"({np.shape(acs)}, {np.shape(obs)}, {np.shape(info)}): the file is damaged"
        )
    _check_count(path, len(obs), num_demo)
    # The layout names no task, and Push, PickAndPlace and Slide share their sizes: say what was not checked.
    print(
        f"warning: {path} is in the reference's layout, which does not name its task: make sure it was "
        f"recorded on {task_name(env_id)}",
        file=sys.stderr,
    )

    out = {key: np.empty((num_demo, *shape), np.float32) for key, shape in expected.items()}
    for e in range(num_demo):
        ep_acs, ep_obs, ep_info = acs[e], obs[e], info[e]
        # Slow or failed reference episodes ran 51-52 steps; the first T steps are the fixed-length episode.
        if len(ep_acs) < T or len(ep_obs) < T + 1 or len(ep_info) < T:
            raise DemoFileError(
                f"{path}: legacy episode {e} has {len(ep_acs)} actions and {len(ep_obs)} "
                f"observations, fewer than T={T} needs ({T} and {T + 1})"
            )
        try:
            lists = {
                "o": [ep_obs[t]["observation"] for t in range(T + 1)],
                "ag": [ep_obs[t]["achieved_goal"] for t in range(T + 1)],
                "g": [ep_obs[t]["desired_goal"] for t in range(T)],
                "u": [ep_acs[t] for t in range(T)],
                "info_is_success": [[ep_info[t]["is_success"]] for t in range(T)],
            }
            episode = {key: np.asarray(value, dtype=np.float32) for key, value in lists.items()}
        except (KeyError, TypeError, IndexError, ValueError) as err:
            raise DemoFileError(
                f"{path}: legacy episode {e} is malformed ({_brief(err)}): expected dicts with "
                f"observation, achieved_goal, desired_goal and is_success"
            ) from None
        for key, array in episode.items():
            if array.shape != expected[key]:
                raise DemoFileError(
                    f"{path}: legacy '{key}' of episode {e} has shape {array.shape}, but {env_id} "
                    f"with T={T} needs {expected[key]}: the file was made for another task"
                )
            out[key][e] = array
    return out


def _no_states(path: Path, what: str, env_id: str, episodes: int) -> DemoFileError:
    return DemoFileError(
        f"{path} {what}, without the simulator states that restoring demo states needs: "
        f"regenerate it with {GENERATOR} --env {env_id} --num_episodes {episodes} --output {path}"
    )


def _read_states(
    data, path: Path, env_id: str, dims: Mapping[str, int], T: int, num_demo: int
) -> dict[str, np.ndarray]:
    """The ``state/`` arrays of the first ``num_demo`` episodes, float64 ``(num_demo, T+1, size)``."""
    held = len(data["u"])  # _read_plain has checked the episode arrays
    keys = sorted(key for key in data.files if key.startswith(STATE_PREFIX))
    if not keys:
        if NO_STATES_KEY in data.files:
            raise DemoFileError(
                f"{path} holds no simulator states ({_scalar_text(data[NO_STATES_KEY])}), and "
                "resets to demo states need them: train without --demo_reset_p, or save demos "
                "from an env whose states can be saved"
            )
        version = int(data["version"]) if "version" in data.files else 1
        raise _no_states(path, f"is a version-{version} demo file", env_id, held)
    missing = [key for key in (GOAL_KEY,) if key not in keys] or ([] if len(keys) > 1 else ["a simulator state"])
    if missing:
        raise DemoFileError(f"{path} has states but lacks {', '.join(missing)}: the file is damaged")
    states = {}
    for key in keys:
        array = _read(data, path, key)
        if array.dtype.kind != "f" or array.ndim != 3 or array.shape[:2] != (held, T + 1):
            raise DemoFileError(
                f"{path}: '{key}' is {array.dtype} {array.shape}, but the states of {held} episodes "
                f"with T={T} are float ({held}, {T + 1}, size): the file is damaged"
            )
        states[key] = np.array(array[:num_demo], dtype=np.float64)
    if states[GOAL_KEY].shape[2] != dims["g"]:
        raise DemoFileError(
            f"{path}: '{GOAL_KEY}' holds goals of size {states[GOAL_KEY].shape[2]}, but {env_id} "
            f"has goals of size {dims['g']}: the file is damaged"
        )
    return states


def demo_state(demos: Mapping[str, np.ndarray], episode: int, t: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The simulator state and goal that restore observation ``t`` of ``episode`` (``her.env_state.set_state``)."""
    state = {
        key.removeprefix(STATE_PREFIX): demos[key][episode, t]
        for key in demos
        if key.startswith(STATE_PREFIX) and key != GOAL_KEY
    }
    return state, demos[GOAL_KEY][episode, t]
