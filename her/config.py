"""The one configuration object: defaults -> task overrides -> demo preset -> user flags, then validation.

Decisions D2 (every key overridable, effective values recorded), D3 (demo preset) and D9 (timesteps to epochs)
in ``docs/design.md``. The trainer (``her.train``, ``her.parts``, ``her.run_folder``), the CLI and the benchmarks
read a ``Config``; the parts built from it (buffer, sampler, networks, workers) take explicit arguments.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import json
import math
import os
import sys
import time
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from her import envs
from her.errors import UserError
from her.her_sampler import PRIORITIES, STRATEGIES
from her.learner import LEARNERS


class ConfigError(UserError, ValueError):
    """A configuration that cannot run. The message is one line saying what was wrong and what to do."""


# Named recipes: departures from the reference, each measured (docs/stacking.md, docs/performance.md), never
# applied unless asked for.
# Order of application: defaults -> task overrides -> demo preset -> recipe -> recorded config -> user flags.
RECIPES: dict[str, dict[str, Any]] = {
    # Block stacking from demonstrations (docs/stacking.md): the paper's per-block step reward and resets to demo
    # states (half of the training episodes), no uniformly random actions (one in ten steps drops a carried
    # block: the scripted expert's success fell from 1.00 to 0.26), and 1,000 demonstrations (the generator's
    # --num_episodes 1000 --noise 0.1: an expert acting through noise shows how to recover, which 100 clean
    # ones do not).
    "stack": {"env_kwargs": "reward_type=step", "demo_reset_p": 0.5, "random_eps": 0.0, "num_demo": 1000},
    # Less wall time to the same success on a small machine (docs/performance.md, "A fast recipe"): networks of
    # 3 x 128, whose update costs about a third of 3 x 256's, and episodes drawn by their objects' energy.
    "fast": {"hidden": 128, "replay_priority": "energy"},
}
# A recipe's keys for runs with demonstrations, over the demo preset's: the fast recipe halves its batches of
# 1,024 (128 of them demo rows), which cost 3.4 times a batch of 256 per update.
RECIPES_WITH_DEMOS: dict[str, dict[str, Any]] = {
    "fast": {"batch_size": 512, "demo_batch_size": 64},
}


def _choices(table: Mapping[str, Any]) -> str:
    """A table's entries with their help, for a key's help text: 'a': what a is; 'b': what b is."""
    return "; ".join(f"{name!r}: {entry.help}" for name, entry in table.items())


def _opt(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


def _derived(help: str, default: Any = None) -> Any:
    # Filled in by build_config from other keys and the task; recorded in params.json, not a CLI flag.
    return field(default=default, metadata={"help": help, "derived": True})


@dataclass(frozen=True)
class Config:
    # --- task and run
    env: str = _opt("FetchReach", f"task: {', '.join(envs.TASKS)}, or a gymnasium id")
    # --- the user's own envs (recorded, so that --resume and --play make the same env)
    gym_packages: str = _opt(
        "", "modules to import first, so that the envs they register can be named by --env (space- or comma-separated)"
    )
    env_kwargs: str = _opt(
        "",
        "keyword arguments for gym.make: key=value ... (values read as Python literals, else strings) or a JSON object",
    )
    seed: int = _opt(0, "random seed; rank r of an MPI job uses seed + 1_000_000*r")
    num_timesteps: float | None = _opt(
        None, "env steps per MPI process; n_epochs = num_timesteps // n_cycles // T // rollout_batch_size"
    )
    n_epochs: int | None = _opt(None, "epochs to train (instead of num_timesteps); default 10 on FetchReach, else 50")
    rollout_batch_size: int = _opt(2, "parallel episodes per MPI process and cycle (alias --num_env)", alias="num_env")
    log_path: str | None = _opt(None, "folder for progress.csv, params.json and policies; default runs/<task>-<time>")
    load_path: str | None = _opt(None, "saved policy (.npz) to start training from")
    demo_file: str | None = _opt(None, "demonstrations (.npz); switches on the demo preset")
    policy_save_interval: int = _opt(5, "also save policy_<epoch>.npz every this many epochs (0: never)")
    buffer_save_interval: int = _opt(
        5, "save the replay buffer for --resume every this many epochs (0: never; 1 makes resume exact)"
    )
    stop_success_rate: float | None = _opt(
        None, "stop early once the test success rate has been >= this for stop_patience epochs in a row"
    )
    stop_patience: int = _opt(10, "epochs in a row at stop_success_rate that end a run early")
    tensorboard: bool = _opt(True, "also write every logged scalar as TensorBoard events into the log folder")
    tf_threads: int = _opt(
        0,
        "TensorFlow threads per MPI process; 0: its share of the host's cores. Results pin the count "
        "they ran with, so that a machine with more cores repeats them",
    )
    # --- DDPG
    layers: int = _opt(3, "hidden layers of actor and critic")
    hidden: int = _opt(256, "units per hidden layer")
    layer_norm: bool = _opt(
        False,
        "LayerNorm, with a learned scale and offset, on every hidden layer of actor and "
        "critic before its ReLU (not in the reference)",
    )
    learner: str = _opt("ddpg", f"what trains: {_choices(LEARNERS)}")
    target_noise: float = _opt(
        0.0,
        "twin learner: std of the Gaussian noise on the target actor's action, as a "
        "fraction of max_u (TD3's target-policy smoothing: 0.2)",
    )
    target_noise_clip: float = _opt(0.5, "twin learner: the target noise is clipped to +-this fraction of max_u")
    Q_lr: float = _opt(1e-3, "critic Adam learning rate")
    pi_lr: float = _opt(1e-3, "actor Adam learning rate")
    buffer_size: int = _opt(1_000_000, "replay capacity in transitions, per MPI process")
    polyak: float = _opt(0.95, "target <- polyak * target + (1 - polyak) * main, once per cycle")
    action_l2: float = _opt(1.0, "weight of the L2 penalty on (pi / max_u)^2 in the actor loss")
    max_u: float = _opt(1.0, "action bound; the actor outputs max_u * tanh(.)")
    clip_obs: float = _opt(200.0, "o and g are clipped to +-clip_obs before normalising")
    norm_eps: float = _opt(0.01, "floor of the normaliser's standard deviation")
    norm_clip: float = _opt(5.0, "normalised inputs are clipped to +-norm_clip")
    gamma: float | None = _opt(None, "discount; default 1 - 1/T (0.98 on Fetch)")
    clip_return: bool = _opt(
        True,
        "clip critic targets to [lowest reward/(1-gamma), 0], i.e. [-1/(1-gamma), 0] on Fetch; if false to (-inf, 0]",
    )
    # --- training loop
    n_cycles: int = _opt(50, "cycles per epoch (10 on FetchReach)")
    n_batches: int = _opt(40, "gradient steps per cycle")
    batch_size: int = _opt(256, "transitions per gradient step, per MPI process (demo rows included)")
    n_test_rollouts: int = _opt(10, "test rollouts per epoch, each of rollout_batch_size episodes")
    test_with_polyak: bool = _opt(False, "evaluate with the target actor instead of the main one")
    random_eps: float = _opt(0.3, "probability of a uniformly random action, per env and step")
    noise_eps: float = _opt(0.2, "std of the Gaussian action noise, as a fraction of max_u")
    # --- HER
    replay_strategy: str = _opt(
        "future",
        f"HER goal selection (HER paper 4.5), one of {', '.join(map(repr, STRATEGIES))}; 'none' relabels "
        "nothing (plain DDPG)",
    )
    replay_k: int = _opt(4, "relabelled fraction is 1 - 1/(1 + replay_k)")
    desired_share: float = _opt(
        0.0,
        "share of the relabelled transitions whose goal is the desired goal of a random stored transition "
        "instead of an achieved goal of their own episode (mrl's 'future-actual' mix: replay_k 4 with 0.5 "
        "relabels 0.4 future, 0.4 desired); 0 is the reference",
    )
    replay_priority: str = _opt("uniform", f"how episodes are drawn for updates: {_choices(PRIORITIES)}")
    energy_clip: float = _opt(0.5, "energy priority: each step's energy gain is clipped to [0, energy_clip]")
    # --- demonstrations
    bc_loss: bool = _opt(
        False, "add the behaviour-cloning loss on demo rows (on with --demo_file; off, the demos are only replayed)"
    )
    q_filter: bool = _opt(False, "clone only demo actions the critic rates above the actor's (on with --demo_file)")
    num_demo: int = _opt(100, "demo episodes loaded from demo_file")
    demo_batch_size: int = _opt(128, "demo rows at the end of every batch")
    prm_loss_weight: float = _opt(0.001, "lambda1, weight of the RL actor loss when bc_loss is on")
    aux_loss_weight: float = _opt(0.0078, "lambda2, weight of the summed behaviour-cloning loss")
    demo_relabel: bool = _opt(True, "relabel demo transitions with HER like the agent's own (reference)")
    demo_legacy: bool = _opt(
        False, "read a demo file in the reference's pickled layout (only for files you trust: unpickling runs code)"
    )
    recipe: str = _opt(
        "",
        "a named set of departures from the reference's configuration, applied after the demo "
        f"preset (flags still override it); one of: {', '.join(RECIPES)} (see RECIPES in "
        "her/config.py)",
    )
    demo_reset_p: float = _opt(
        0.0,
        "fraction of training episodes that start from a random demo state, with the goal that demo "
        "achieved at its end (Nair et al.'s resets; needs a version-2 demo_file); evaluation never does",
    )
    # --- derived
    env_id: str = _derived("gymnasium id of the task", "")
    T: int = _derived("episode length: env steps per rollout", 0)
    mpi_size: int = _derived("number of MPI processes", 1)

    @property
    def packages(self) -> list[str]:
        return package_list(self.gym_packages)

    @property
    def make_kwargs(self) -> dict[str, Any]:
        """env_kwargs as the dict gym.make takes."""
        return json.loads(self.env_kwargs) if self.env_kwargs else {}

    @property
    def relabel_p(self) -> float:
        """Probability that a sampled transition gets a hindsight goal (0 for 'none')."""
        if self.replay_strategy == "none":
            return 0.0
        return 1.0 - 1.0 / (1.0 + self.replay_k)

    @property
    def return_clip(self) -> float:
        assert self.gamma is not None, "build_config derives gamma"
        return 1.0 / (1.0 - self.gamma) if self.clip_return else math.inf

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Reference §2.3, keyed by task so that every FetchReach version gets it (reference quirk #18).
TASK_OVERRIDES: dict[str, dict[str, Any]] = {"FetchReach": {"n_cycles": 10}}
DEFAULT_EPOCHS: dict[str, int] = {"FetchReach": 10}
DEFAULT_EPOCHS_OTHER = 50

# Decision D3: the configuration of the reference's reported results with demonstrations.
DEMO_PRESET: dict[str, Any] = {
    "bc_loss": True,
    "q_filter": True,
    "num_demo": 100,
    "demo_batch_size": 128,
    "prm_loss_weight": 0.001,
    "aux_loss_weight": 0.0078,
    "n_cycles": 20,
    "batch_size": 1024,
    "random_eps": 0.1,
    "noise_eps": 0.1,
}

# Keys added after runs were recorded, with the value a record without them trained with (resume, --play).
ADDED_KEYS: dict[str, Any] = {
    "demo_reset_p": 0.0,
    "gym_packages": "",
    "env_kwargs": "",
    "recipe": "",
    "tf_threads": 0,
    "layer_norm": False,
    "learner": "ddpg",
    "target_noise": 0.0,
    "target_noise_clip": 0.5,
    "replay_priority": "uniform",
    "energy_clip": 0.5,
    "desired_share": 0.0,
}

FIELDS = {f.name: f for f in dataclasses.fields(Config)}
PATH_KEYS = ("log_path", "load_path", "demo_file")
OPTIONS = [f for f in FIELDS.values() if not f.metadata.get("derived")]
ALIASES = {f.metadata["alias"]: f.name for f in OPTIONS if "alias" in f.metadata}
_TYPES = typing.get_type_hints(Config)


def base_type(name: str) -> type:
    """The type of configuration key ``name``, without its Optional."""
    hint = _TYPES[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _is_optional(name: str) -> bool:
    return type(None) in typing.get_args(_TYPES[name])


def package_list(text: str) -> list[str]:
    return [name for name in text.replace(",", " ").split() if name]


def env_module(env: str | None) -> list[str]:
    """The module an ``--env module:EnvId`` imports (gym.make's form), as a list of none or one."""
    return [env.partition(":")[0]] if env and ":" in env else []


def unnamed_modules(env: str, packages: Iterable[str], named: Iterable[str]) -> list[str]:
    """The modules that making ``env`` after importing ``packages`` would import, less those in ``named`` (what the
    user gave on the command line) and those already imported (importing them again runs nothing)."""
    needed = dict.fromkeys([*packages, *env_module(env)])
    return [module for module in needed if module not in set(named) and module not in sys.modules]


def _packages_text(value: Any) -> str:
    names = package_list(value) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"gym_packages must be module names, got {value!r}")
    return ",".join(names)


# Keys gym.make takes for itself rather than passing to the env, which a run would record and then not honour.
_MAKE_KEYS = {
    "max_episode_steps": "the episode length T is the one the env id was registered with (FetchReach-v4: 50), "
    "which every buffer is shaped by; register an id of your own for another length",
    "render_mode": "rendering is chosen by --play (--render, --video), not by --env_kwargs",
    "autoreset": "the rollout resets the envs itself: drop it",
    "disable_env_checker": "the env checker is gymnasium's, not part of a run: drop it",
    "apply_api_compatibility": "only envs of today's gymnasium API can be trained: drop it",
}


def _kwargs_text(value: Any) -> str:
    """env_kwargs in its recorded form, a JSON object ('' for none), from a dict, a JSON object or key=value pairs."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise ConfigError(f"env_kwargs is not a JSON object ({e}): give key=value pairs or a JSON object") from None
    if isinstance(value, str):
        pairs = {}
        for item in value.split():
            key, sep, text = item.partition("=")
            if not sep or not key.isidentifier():
                raise ConfigError(f"env_kwargs takes key=value pairs, got {item!r}")
            try:
                pairs[key] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                pairs[key] = text  # a bare word: a string
        value = pairs
    if not isinstance(value, Mapping):
        raise ConfigError(f"env_kwargs must be key=value pairs or a JSON object, got {value!r}")
    for key, why in _MAKE_KEYS.items():
        if key in value:
            raise ConfigError(f"env_kwargs {key}: {why}")
    try:
        return json.dumps(dict(value)) if value else ""
    except TypeError as e:
        raise ConfigError(f"env_kwargs values must be numbers, strings, lists or dicts ({e})") from None


def coerce(name: str, value: Any) -> Any:  # noqa: C901 - one flat branch per type and key, each with its own message
    """Turn a user value (often a CLI string) into the key's type, or raise ConfigError."""
    if name == "gym_packages" and value is not None:
        return _packages_text(value)
    if name == "env_kwargs" and value is not None:
        return _kwargs_text(value)
    kind = base_type(name)
    if name in PATH_KEYS and isinstance(value, str) and not value.strip():
        raise ConfigError(f"--{name} is an empty string (an unset shell variable?): give a path, or drop the option")
    if value is None or (_is_optional(name) and isinstance(value, str) and value.lower() in ("", "none")):
        if _is_optional(name):
            return None
        raise ConfigError(f"{name} needs a value of type {kind.__name__}")
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if value in (0, 1):
                return bool(value)
            raise ValueError
        if kind is int:
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, bool) or not float(number).is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(value, os.PathLike):  # paths from Python callers
            value = os.fspath(value)
        if not isinstance(value, str):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        expected = {bool: "0/1 or true/false", int: "an integer", float: "a number", str: "a string"}[kind]
        raise ConfigError(f"{name} must be {expected}, got {value!r}") from None
    if name in PATH_KEYS:
        check_path(name, value)
    return value


NAME_MAX = 255  # bytes in one path component on Linux and macOS file systems


def check_path(name: str, path: str) -> None:
    """A path every later step can write, record in params.json and print: UTF-8, components of legal length;
    else a ConfigError naming option ``--name``."""
    try:
        encoded = [part.encode("utf-8") for part in path.split("/")]
    except UnicodeEncodeError:
        raise ConfigError(
            f"--{name} {path!r} is not valid UTF-8 (params.json and policy files record it): choose a name in UTF-8"
        ) from None
    longest = max(encoded, key=len)
    if len(longest) > NAME_MAX:
        raise ConfigError(
            f"--{name}: the name {longest[:20].decode(errors='replace')}... is {len(longest)} bytes "
            f"long, more than the {NAME_MAX} a file system allows: choose a shorter one"
        )


def nearest_key(name: str) -> str:
    """' (did you mean --batch_size?)' for a misspelt key, or '' if nothing is close."""
    candidates = [f.name for f in OPTIONS] + list(ALIASES)
    match = difflib.get_close_matches(name.lstrip("-").replace("-", "_"), candidates, n=1, cutoff=0.6)
    return f" (did you mean --{match[0]}?)" if match else ""


def default_log_path(task: str) -> str:
    """``runs/<task>-<date>-<time>``, with ``-2``, ``-3``, ... when a run started in the same second took the name."""
    base = f"runs/{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def build_config(  # noqa: C901 - the order of application (defaults to flags) reads best as one function
    user: Mapping[str, Any] | None = None,
    *,
    mpi_size: int = 1,
    recorded: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults -> task overrides -> demo preset (if demo_file) -> ``recorded`` (see read_recorded) -> ``user``;
    then derive and validate."""
    user = dict(user or {})
    recorded = dict(recorded or {})
    for alias, name in ALIASES.items():
        if alias in user:
            if name in user and coerce(name, user[name]) != coerce(name, user[alias]):
                raise ConfigError(f"--{alias} and --{name} are the same key with different values; give one")
            user[name] = user.pop(alias)
    for name in user:
        if name not in FIELDS or FIELDS[name].metadata.get("derived"):
            raise ConfigError(f"unknown configuration key --{name}{nearest_key(name)}; see --help for every key")
    user = {name: coerce(name, value) for name, value in user.items()}
    if "n_epochs" in user or "num_timesteps" in user:  # the user's length replaces the record's, in either form
        recorded.pop("n_epochs", None)
        recorded.pop("num_timesteps", None)
    chosen = {**recorded, **user}

    env = chosen.get("env", FIELDS["env"].default)
    if recorded:  # a params.json may come from anywhere: it imports only what the user names again
        missing = unnamed_modules(
            env,
            package_list(chosen.get("gym_packages", "")),
            [*package_list(user.get("gym_packages", "")), *env_module(user.get("env"))],
        )
        if missing:
            raise ConfigError(
                f"the recorded configuration (--config) needs {', '.join(missing)} imported to make "
                "its env, and a record runs no code by itself: if you trust it, pass --gym_packages "
                f"{','.join(missing)}"
            )
    try:
        env_id = envs.resolve_env_id(env, package_list(chosen.get("gym_packages", "")))
        T = envs.episode_length(env_id)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    task = envs.task_name(env_id)

    values: dict[str, Any] = {f.name: f.default for f in OPTIONS}
    values.update(TASK_OVERRIDES.get(task, {}))
    if chosen.get("demo_file"):
        values.update(DEMO_PRESET)
    recipe = chosen.get("recipe") or ""
    if recipe:
        if recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r}: use one of {', '.join(RECIPES)}, or none")
        values.update({name: coerce(name, value) for name, value in RECIPES[recipe].items()})
        if chosen.get("demo_file"):
            values.update({name: coerce(name, value) for name, value in RECIPES_WITH_DEMOS.get(recipe, {}).items()})
    values.update(chosen)

    if values["num_timesteps"] is not None and values["n_epochs"] is not None:
        raise ConfigError("give either --n_epochs or --num_timesteps, not both")
    if values["num_timesteps"] is not None:
        steps = values["num_timesteps"]
        if not math.isfinite(steps) or steps < 0:
            raise ConfigError(f"num_timesteps must be a non-negative number, got {steps}")
        rbs = max(values["rollout_batch_size"], 1)
        values["n_epochs"] = int(steps // max(values["n_cycles"], 1) // T // rbs)
        if values["n_epochs"] < 1:
            per_epoch = values["n_cycles"] * T * rbs
            raise ConfigError(
                f"num_timesteps={steps:g} gives zero epochs: one epoch is n_cycles*T*rollout_batch_size = "
                f"{per_epoch} env steps per MPI process; ask for at least that many"
            )
    elif values["n_epochs"] is None:
        values["n_epochs"] = DEFAULT_EPOCHS.get(task, DEFAULT_EPOCHS_OTHER)
    if values["gamma"] is None:
        values["gamma"] = 1.0 - 1.0 / T
    if values["log_path"] is None:
        values["log_path"] = default_log_path(task)

    config = Config(**values, env_id=env_id, T=T, mpi_size=mpi_size)
    validate(config)
    return config


def read_recorded(path: str | os.PathLike) -> dict[str, Any]:
    """The configuration recorded in a params.json, for ``--config``: checked like flags, without what a new run
    derives anew (env_id, T, mpi_size, a gamma derived from T) or must not share (log_path)."""
    try:
        saved = json.loads(open(path).read())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--config {path}: cannot read it ({e}): give the params.json of a run") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"--config {path}: a JSON {type(saved).__name__}, not a recorded configuration")
    unknown = sorted(set(saved) - set(FIELDS))
    if unknown:
        raise ConfigError(f"--config {path}: unknown keys {unknown}: not a params.json of this version")
    values = {name: coerce(name, value) for name, value in saved.items()}
    T = values.get("T")
    if T and values.get("gamma") is not None and math.isclose(values["gamma"], 1.0 - 1.0 / T):
        del values["gamma"]  # it was derived from T: derive it again, for the (possibly other) task
    if values.get("num_timesteps") is not None:
        values.pop("n_epochs", None)  # derived from num_timesteps
    for name in ("log_path", *(f.name for f in FIELDS.values() if f.metadata.get("derived"))):
        values.pop(name, None)
    return values


def config_from_dict(saved: Mapping[str, Any], named: Iterable[str] = (), **changes: Any) -> Config:
    """A recorded configuration (params.json, a policy file's record) as a Config, with ``changes`` applied.

    Every value is checked as a user flag would be, so a hand-edited record gets a one-line ConfigError. The
    modules the record's env needs are imported only if ``named`` (the user's --gym_packages) holds them or they
    are imported already: a record runs no code by itself.
    """
    if not isinstance(saved, Mapping):
        raise ConfigError(f"the record is a JSON {type(saved).__name__}, not a configuration")
    unknown = sorted(set(saved) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown keys {unknown}: written by another version")
    values = {name: coerce(name, value) for name, value in {**ADDED_KEYS, **saved, **changes}.items()}
    missing = sorted(set(FIELDS) - set(values))
    if missing:
        raise ConfigError(f"keys {missing} are missing")
    missing = unnamed_modules(values["env"], package_list(values["gym_packages"]), named)
    if missing:
        raise ConfigError(
            f"its env needs {', '.join(missing)} imported, and a run's record runs no code by "
            f"itself: if you trust it, pass --gym_packages {','.join(missing)}"
        )
    try:
        env_id = envs.resolve_env_id(values["env"], package_list(values["gym_packages"]))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if env_id != values["env_id"] or envs.episode_length(env_id) != values["T"]:
        raise ConfigError(f"env {values['env']!r} does not match env_id {values['env_id']!r} and T {values['T']}")
    config = Config(**values)
    validate(config)
    return config


def _check(ok: object, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(c: Config) -> None:
    """Range and consistency checks; each failure names the key, the value and what would work."""
    positive_ints = [
        "n_epochs",
        "rollout_batch_size",
        "layers",
        "hidden",
        "n_cycles",
        "n_batches",
        "batch_size",
        "num_demo",
    ]
    for name in positive_ints:
        value = getattr(c, name)
        _check(
            value >= 1,
            f"{name} must be >= 1, got {value}"
            + (
                ": it is how many episodes of --demo_file to use (to train without demonstrations, drop --demo_file)"
                if name == "num_demo"
                else ""
            ),
        )
    for name in ["n_test_rollouts", "policy_save_interval", "buffer_save_interval", "seed"]:
        value = getattr(c, name)
        _check(value >= 0, f"{name} must be >= 0, got {value}")
    for name in ["Q_lr", "pi_lr", "max_u", "clip_obs", "norm_eps", "norm_clip"]:
        value = getattr(c, name)
        _check(math.isfinite(value) and value > 0, f"{name} must be a positive number, got {value}")
    for name in ["action_l2", "prm_loss_weight", "aux_loss_weight"]:
        value = getattr(c, name)
        _check(math.isfinite(value) and value >= 0, f"{name} must be a number >= 0, got {value}")
    for name in ["polyak", "random_eps", "noise_eps", "demo_reset_p", "desired_share"]:
        value = getattr(c, name)
        _check(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
    if c.stop_success_rate is not None:
        _check(0.0 <= c.stop_success_rate <= 1.0, f"stop_success_rate must be in [0, 1], got {c.stop_success_rate}")
    _check(c.stop_patience >= 1, f"stop_patience must be >= 1, got {c.stop_patience}")
    _check(c.tf_threads >= 0, f"tf_threads must be >= 0 (0: a share of the cores), got {c.tf_threads}")
    _check(c.gamma is not None and 0.0 < c.gamma < 1.0, f"gamma must be in (0, 1), got {c.gamma}")
    _check(
        c.replay_strategy in STRATEGIES,
        f"replay_strategy must be one of {', '.join(map(repr, STRATEGIES))}, got {c.replay_strategy!r}",
    )
    _check(c.replay_k >= 0, f"replay_k must be >= 0, got {c.replay_k}")
    _check(
        c.replay_priority in PRIORITIES,
        f"replay_priority must be one of {', '.join(map(repr, PRIORITIES))}, got {c.replay_priority!r}",
    )
    _check(c.energy_clip > 0, f"energy_clip must be > 0, got {c.energy_clip}")
    _check(c.learner in LEARNERS, f"learner must be one of {', '.join(map(repr, LEARNERS))}, got {c.learner!r}")
    for name in ["target_noise", "target_noise_clip"]:
        value = getattr(c, name)
        _check(math.isfinite(value) and value >= 0, f"{name} must be a number >= 0, got {value}")
    # A learner's key that switches something on (default off) is refused beside another learner, where it would
    # silently do nothing; its settings (target_noise_clip) are harmless there.
    for name, entry in LEARNERS.items():
        for key in entry.keys:
            _check(
                name == c.learner or not getattr(c, key) or FIELDS[key].default,
                f"{key}={getattr(c, key)} is the {name} learner's: pass --learner {name}, or drop --{key}",
            )
    _check(
        c.buffer_size >= c.T * c.rollout_batch_size,
        f"buffer_size={c.buffer_size} cannot hold one cycle of episodes; give at least "
        f"T*rollout_batch_size = {c.T * c.rollout_batch_size}",
    )
    _check(c.recipe in ("", *RECIPES), f"unknown recipe {c.recipe!r}: use one of {', '.join(RECIPES)}, or none")
    _check(not c.q_filter or c.bc_loss, "q_filter needs bc_loss: pass --bc_loss 1 (and a --demo_file)")
    _check(not c.bc_loss or c.demo_file, "bc_loss needs demonstrations: pass --demo_file <file.npz>")
    _check(
        not c.demo_reset_p or c.demo_file,
        f"demo_reset_p={c.demo_reset_p} needs demonstrations to reset to: pass --demo_file <file.npz>",
    )
    if c.demo_file:  # with bc_loss=0 the demos are still replayed (Nair et al.'s "no BC loss" ablation)
        _check(
            1 <= c.demo_batch_size < c.batch_size,
            f"demo_batch_size must be in [1, batch_size={c.batch_size}), got {c.demo_batch_size}",
        )
