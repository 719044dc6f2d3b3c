"""Use a trained policy from Python, without TensorFlow::

    import her.policy
    policy = her.policy.load("runs/push")      # a policy .npz or a log folder (its policy_best.npz)
    action = policy.act(obs)                   # obs: a goal-env observation dict, or a batch of them

The policy file alone is enough: weights and normaliser sums as plain arrays, the configuration as JSON.
Acting goes through the acting head the file names (``her.numpy_actor.HEADS``), the code training acts with, so
the actions are those of the training-time evaluator. Nothing imported here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from her import policy_file
from her.normalizer import Normalizer
from her.numpy_actor import DEFAULT_HEAD, HEADS, ActingHead, explore
from her.policy_file import PolicyFileError

__all__ = ["Policy", "PolicyFileError", "load"]

# What acting reads from the saved configuration; every policy file of this project records them.
_CONFIG_KEYS = ("max_u", "clip_obs", "norm_eps", "norm_clip", "test_with_polyak", "noise_eps", "random_eps")


class Policy:
    """A saved policy, ready to act. Build it with ``load``."""

    def __init__(self, path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]):
        self.path = path
        self.meta = dict(meta)
        self.config: dict[str, Any] = _saved_config(meta, path)
        self.env_id: str = self.config["env_id"]
        self.dims: dict[str, int] = _saved_dims(meta, path)
        self.max_u = float(self.config["max_u"])
        self.rng = np.random.default_rng()

        stats = []
        for name, size in (("o_stats", self.dims["o"]), ("g_stats", self.dims["g"])):
            normalizer = Normalizer(size, float(self.config["norm_eps"]))
            try:
                normalizer.load_state_dict({key: arrays[f"{name}/{key}"] for key in ("sum", "sumsq", "count")})
            except (KeyError, ValueError) as e:
                raise PolicyFileError(f"{path} holds no usable normaliser {name} ({_reason(e)})") from None
            stats += [normalizer.mean, normalizer.std]
        self.head: str = _saved_head(meta, path)
        build = HEADS[self.head]
        # Keyed by use-the-target-networks: the target actor is rated by the target critic, as in training.
        self._nets: dict[bool, ActingHead] = {}
        for target, prefix in ((False, ""), (True, "target_")):
            try:
                self._nets[target] = build(arrays, prefix, self.dims, stats, self.config)
            except ValueError as e:
                raise PolicyFileError(f"{path}: {e}") from None

    def act(
        self, observation: Mapping[str, np.ndarray], deterministic: bool = True, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Actions for a goal-env observation dict (``observation``, ``desired_goal``): ``(dim_u,)`` for one,
        ``(n, dim_u)`` for a batch (arrays with a leading batch axis, e.g. from a vector env).

        Deterministic acting is the training-time evaluator's: no noise, no random actions, the target actor
        if the run tested with it (``test_with_polyak``). Otherwise the exploring training actor, with the run's
        ``noise_eps`` and ``random_eps``, drawn from ``rng`` (default: ``self.rng``).
        """
        o, g, single = self._inputs(observation)
        if deterministic:
            u, _ = self._nets[bool(self.config["test_with_polyak"])].act(o, g)
        else:
            u, _ = self._nets[False].act(o, g)
            u = explore(
                u,
                self.max_u,
                float(self.config["noise_eps"]),
                float(self.config["random_eps"]),
                self.rng if rng is None else rng,
            )
        return u[0] if single else u

    def q_value(self, observation: Mapping[str, np.ndarray], action: np.ndarray | None = None) -> np.ndarray:
        """The critic's Q(o, g, action), by default of the deterministic action: a 0-d array for one observation,
        ``(n,)`` for a batch. The target critic if the run tested with the target networks (``test_with_polyak``),
        so that it matches the run's ``test/mean_Q``."""
        o, g, single = self._inputs(observation)
        nets = self._nets[bool(self.config["test_with_polyak"])]
        x = nets.normalize(o, g)
        if action is None:
            u = nets.actions(x)
        else:
            u = np.asarray(action, np.float32)
            expected = (self.dims["u"],) if single else (len(x), self.dims["u"])
            if u.shape != expected:
                raise ValueError(f"action has shape {u.shape}, expected {expected}")
            u = u.reshape(len(x), self.dims["u"])
        q = nets.q(x, u)[:, 0]
        return q[0] if single else q

    def _inputs(self, observation: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(o, g)`` as float32 batches and whether the input was a single observation; wrong shapes raise."""
        try:
            o = np.asarray(observation["observation"], np.float32)
            g = np.asarray(observation["desired_goal"], np.float32)
        except (KeyError, TypeError, IndexError):
            raise ValueError("act() takes a goal-env observation dict with 'observation' and 'desired_goal'") from None
        single = o.ndim == 1
        o, g = np.atleast_2d(o), np.atleast_2d(g)
        if o.ndim != 2 or o.shape[1] != self.dims["o"] or g.shape != (len(o), self.dims["g"]):
            raise ValueError(
                f"observation {o.shape[-1:]} and desired_goal {g.shape[-1:]} do not fit this "
                f"{self.env_id} policy (o: {self.dims['o']}, g: {self.dims['g']}, same batch size)"
            )
        return o, g, single

    def __repr__(self) -> str:
        dims = ", ".join(f"{key}={value}" for key, value in self.dims.items())
        return f"Policy({self.env_id}, {dims}, {self.path})"


def load(path: str | Path) -> Policy:
    """The policy in a policy file or a log folder (its ``policy_best.npz``); problems raise a one-line
    PolicyFileError."""
    resolved = policy_file.resolve_policy_path(path)
    arrays, meta = policy_file.read_policy(resolved)
    return Policy(resolved, arrays, meta)


# ---- checking what the file holds ----


def _reason(e: Exception) -> str:
    return f"missing {e}" if isinstance(e, KeyError) else str(e)


def _saved_config(meta: Mapping[str, Any], path: Path) -> dict[str, Any]:
    config = meta.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("env_id"), str):
        raise PolicyFileError(f"{path} does not record the task it was trained on (config.env_id)")
    missing = [key for key in _CONFIG_KEYS if not isinstance(config.get(key), (int, float))]
    if missing:
        raise PolicyFileError(f"{path} records no numeric config.{missing[0]}, which acting needs")
    return config


def _saved_dims(meta: Mapping[str, Any], path: Path) -> dict[str, int]:
    dims = meta.get("dims")
    if not isinstance(dims, dict) or not all(isinstance(dims.get(key), int) and dims[key] > 0 for key in "ogu"):
        raise PolicyFileError(f"{path} does not record the task's dimensions (dims o, g, u)")
    return {key: int(dims[key]) for key in "ogu"}


def _saved_head(meta: Mapping[str, Any], path: Path) -> str:
    head = meta.get("head", DEFAULT_HEAD)  # files from before the record hold DDPG's networks
    if head not in HEADS:
        raise PolicyFileError(
            f"{path} holds a policy of the acting head {head!r}, which this code cannot act with "
            f"(it knows {', '.join(map(repr, HEADS))})"
        )
    return str(head)
