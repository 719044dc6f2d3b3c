"""Where an episode starts: the hook ``RolloutWorker`` calls to begin each env's episode.

A start strategy has ``start(env_index, env, rng) -> obs``: it resets the env (how, and with which seed, is
its choice), may then put the env into another state (the TimeLimit still counts T steps from that reset, see
``her.env_state.set_state``), and returns the observation the episode begins with. This is the
one place to add further strategies (curricula over start states, user-defined starts): a class here and
its case in ``training_starts``; the rollout loop itself never changes. ``EnvReset`` keeps the env's own
reset; ``DemoStates`` is Nair et al.'s resets to demonstration states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium as gym
import numpy as np

from her import env_state
from her.demo import STATE_PREFIX, demo_state

if TYPE_CHECKING:
    from her.config import Config

Obs = dict[str, Any]


class Starts(Protocol):
    def start(self, env_index: int, env: gym.Env, rng: np.random.Generator | None) -> Obs: ...


class EnvReset:
    """The env's own reset: every episode starts where ``env.reset()`` put it."""

    def start(self, env_index: int, env: gym.Env, rng: np.random.Generator | None) -> Obs:
        obs, _ = env.reset()
        return obs


class SeededResets:
    """The env's own reset, seeded from ``seeds``, one entry per episode in turn (``None``: not reseeded)."""

    def __init__(self, seeds: Iterable[int | None]):
        self.seeds = iter(seeds)

    def start(self, env_index: int, env: gym.Env, rng: np.random.Generator | None) -> Obs:
        obs, _ = env.reset(seed=next(self.seeds))
        return obs


class DemoStates:
    """With probability ``p`` per env and episode, start from a state of a demonstration (Nair et al. 2018).

    The demo episode and its step are uniform; the desired goal is that demo's final achieved goal,
    ``ag[e, T]``, "the goal achieved at the end of the demonstration". ``demos`` are ``load_demos(...,
    need_states=True)``'s arrays; ``envs`` (tracked here, before their next reset) are the ones it will restore.
    """

    def __init__(self, demos: Mapping[str, np.ndarray], p: float, envs: Sequence[gym.Env]):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"the demo-reset probability must be in [0, 1], got {p}")
        # Only what restoring needs: ag (E, T+1, dim_g) float32 and the state/ arrays (E, T+1, size) float64.
        self.demos = {key: value for key, value in demos.items() if key == "ag" or key.startswith(STATE_PREFIX)}
        self.p = p
        self.n_demos, T_plus_1 = demos["ag"].shape[:2]
        self.T = T_plus_1 - 1
        for env in envs:
            # Before their next reset, so every episode of these envs steps alike, demo start or not (and an env
            # whose state cannot be restored fails here, in one line, rather than mid-training).
            env_state.track(env)

    def start(self, env_index: int, env: gym.Env, rng: np.random.Generator | None) -> Obs:
        obs, _ = env.reset()
        if rng is None:
            raise ValueError("starting from demo states needs an rng")
        if rng.random() >= self.p:
            return obs
        e = int(rng.integers(self.n_demos))
        # States 0..T-1: the final state T is excluded because it already achieves this goal (it is where
        # the goal comes from), so an episode started there would hold no decision at all; the reset state 0
        # is included, where the whole demonstrated task still lies ahead.
        t = int(rng.integers(self.T))
        state, _ = demo_state(self.demos, e, t)
        return env_state.set_state(env, state, self.demos["ag"][e, self.T])


def training_starts(config: Config, demos: Mapping[str, np.ndarray] | None, envs: Sequence[gym.Env]) -> Starts:
    """How the training episodes of ``envs`` start, as ``config`` asks; evaluation always uses ``EnvReset``."""
    if config.demo_reset_p > 0:
        assert demos is not None, "validate() refuses demo_reset_p without a demo_file"
        return DemoStates(demos, config.demo_reset_p, envs)
    return EnvReset()
