"""Acting in numpy float32 from a copy of the weights: normalise, actor, critic, exploration. No TensorFlow.

The one implementation of action selection, used during training (``DDPG.get_actions``) and from a saved
policy (``her.policy``). It exists because dispatching a ``tf.function`` call costs more than the Fetch step it
serves, and this small forward pass far less (measured in docs/performance.md); tests/test_ddpg.py checks that it
agrees with the TensorFlow graph step for step.

A learner's network state is read by its acting head, the entry of ``HEADS`` its policy files name; DDPG's
deterministic tanh actor with the one-output critic that rates it is the one head today.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

LAYER_NORM_EPS = np.float32(1e-5)  # her.actor_critic's


def mlp(weights: Sequence[np.ndarray], x: np.ndarray, layer_norm: bool = False) -> np.ndarray:
    """An MLP's forward pass from its parameters (kernel_0, bias_0, [scale_0, offset_0,] kernel_1, ...): ReLU
    between, after a LayerNorm if ``layer_norm``, and a linear output."""
    i = 0
    while True:
        x = x @ weights[i] + weights[i + 1]
        i += 2
        if i == len(weights):
            return x
        if layer_norm:
            x = x - x.mean(axis=-1, keepdims=True)
            x *= 1.0 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + LAYER_NORM_EPS)
            x = x * weights[i] + weights[i + 1]
            i += 2
        np.maximum(x, 0.0, out=x)


@dataclass(frozen=True)
class NumpyActorCritic:
    """One actor and the critic that rates it, with the normaliser statistics, as float32 arrays."""

    actor: Sequence[np.ndarray]
    critic: Sequence[np.ndarray]
    og_mean: np.ndarray  # (dim_o + dim_g,): o and g are normalised as one row [o, g], half the numpy calls
    og_std: np.ndarray
    max_u: float
    clip_obs: float
    norm_clip: float
    layer_norm: bool = False

    @classmethod
    def build(
        cls,
        actor: Sequence[np.ndarray],
        critic: Sequence[np.ndarray],
        o_mean: np.ndarray,
        o_std: np.ndarray,
        g_mean: np.ndarray,
        g_std: np.ndarray,
        *,
        max_u: float,
        clip_obs: float,
        norm_clip: float,
        layer_norm: bool = False,
    ) -> NumpyActorCritic:
        """From float64 statistics: they are rounded to float32 first, as the TensorFlow graph holds them."""

        def f32(parts: Sequence[np.ndarray]) -> np.ndarray:
            return np.concatenate([np.asarray(p).astype(np.float32) for p in parts])

        return cls(
            [np.asarray(w, np.float32) for w in actor],
            [np.asarray(w, np.float32) for w in critic],
            f32([o_mean, g_mean]),
            f32([o_std, g_std]),
            max_u,
            clip_obs,
            norm_clip,
            layer_norm,
        )

    def normalize(self, o: np.ndarray, g: np.ndarray) -> np.ndarray:
        """clip to +-clip_obs, standardise, clip to +-norm_clip, on the row [o, g]: ``(n, dim_o + dim_g)``."""
        x = np.concatenate([np.asarray(o, np.float32), np.asarray(g, np.float32)], axis=1)
        # minimum/maximum in place cost half of np.clip at these sizes.
        np.minimum(np.maximum(x, -self.clip_obs, out=x), self.clip_obs, out=x)
        x -= self.og_mean
        x /= self.og_std
        np.minimum(np.maximum(x, -self.norm_clip, out=x), self.norm_clip, out=x)
        return x

    def actions(self, x: np.ndarray) -> np.ndarray:
        """pi = max_u * tanh(MLP(x)) on normalised rows ``x``."""
        return np.float32(self.max_u) * np.tanh(mlp(self.actor, x, self.layer_norm))

    def q(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Q(x, u) = MLP([x, u / max_u]) on normalised rows ``x``: ``(n, 1)``."""
        x_u = np.concatenate([x, np.asarray(u, np.float32) / np.float32(self.max_u)], axis=1)
        return mlp(self.critic, x_u, self.layer_norm)

    def act(self, o: np.ndarray, g: np.ndarray, compute_Q: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Actions ``(n, dim_u)`` for ``o: (n, dim_o)``, ``g: (n, dim_g)``, and Q of those actions if asked."""
        x = self.normalize(o, g)
        u = self.actions(x)
        return u, (self.q(x, u) if compute_Q else None)


class ActingHead(Protocol):
    """What acting needs of a learner's networks, in numpy: actions and the values of actions."""

    def normalize(self, o: np.ndarray, g: np.ndarray) -> np.ndarray: ...

    def actions(self, x: np.ndarray) -> np.ndarray: ...

    def q(self, x: np.ndarray, u: np.ndarray) -> np.ndarray: ...

    def act(self, o: np.ndarray, g: np.ndarray, compute_Q: bool = False) -> tuple[np.ndarray, np.ndarray | None]: ...


# (network state, "" or "target_", dims, (o_mean, o_std, g_mean, g_std), settings) -> a head; a layout that does
# not fit raises ValueError.
HeadBuilder = Callable[
    [Mapping[str, np.ndarray], str, Mapping[str, int], Sequence[np.ndarray], Mapping[str, Any]], ActingHead
]


def mlp_weights(
    state: Mapping[str, np.ndarray], name: str, n_in: int, n_out: int, layer_norm: bool = False
) -> list[np.ndarray]:
    """The parameters ``name/0, name/1, ...`` of an MLP ``n_in -> ... -> n_out`` (with a LayerNorm scale and
    offset after each hidden layer's bias if ``layer_norm``), checked to chain up; ValueError if they do not."""
    weights: list[np.ndarray] = []
    while f"{name}/{len(weights)}" in state:
        weights.append(np.asarray(state[f"{name}/{len(weights)}"]))
    width, i, ok = n_in, 0, len(weights) >= 2
    while ok and i < len(weights):
        kernel, bias = weights[i], weights[i + 1] if i + 1 < len(weights) else None
        ok = bias is not None and kernel.ndim == 2 and kernel.shape[0] == width and bias.shape == kernel.shape[1:]
        width = kernel.shape[1] if ok else -1
        i += 2
        if ok and layer_norm and i < len(weights):  # a hidden layer: its scale and offset follow
            ok = i + 1 < len(weights) and weights[i].shape == weights[i + 1].shape == (width,)
            i += 2
    if not ok or width != n_out:
        shapes = [tuple(w.shape) for w in weights]
        norm = " with LayerNorm" if layer_norm else ""
        raise ValueError(f"the {name} network{norm} {shapes} does not map {n_in} inputs to {n_out} outputs")
    return weights


def deterministic_head(
    state: Mapping[str, np.ndarray],
    prefix: str,
    dims: Mapping[str, int],
    stats: Sequence[np.ndarray],
    settings: Mapping[str, Any],
) -> NumpyActorCritic:
    """DDPG's layout: ``<prefix>actor`` maps [o, g] to tanh actions, ``<prefix>critic`` rates [o, g, u] with one
    output. ``settings``: max_u, clip_obs, norm_clip and layer_norm (absent: False, as files before the key)."""
    n_og = dims["o"] + dims["g"]
    layer_norm = bool(settings.get("layer_norm", False))
    return NumpyActorCritic.build(
        mlp_weights(state, prefix + "actor", n_og, dims["u"], layer_norm),
        mlp_weights(state, prefix + "critic", n_og + dims["u"], 1, layer_norm),
        *stats,
        max_u=float(settings["max_u"]),
        clip_obs=float(settings["clip_obs"]),
        norm_clip=float(settings["norm_clip"]),
        layer_norm=layer_norm,
    )


# A learner's ``head`` -> how its network state acts. Policy files record the name; those from before the record
# hold DEFAULT_HEAD.
HEADS: dict[str, HeadBuilder] = {"deterministic": deterministic_head}
DEFAULT_HEAD = "deterministic"


def explore(
    u: np.ndarray, max_u: float, noise_eps: float, random_eps: float, rng: np.random.Generator | None
) -> np.ndarray:
    """The reference's exploration (reference §4): Gaussian noise of std ``noise_eps * max_u``, clipped, then
    each row replaced with probability ``random_eps`` by a uniform random action. Returns float32."""
    if rng is None:
        if noise_eps > 0.0 or random_eps > 0.0:
            raise ValueError("exploration noise needs a random generator")
        return u.astype(np.float32)
    if noise_eps > 0.0:
        u = np.clip(u + noise_eps * max_u * rng.standard_normal(u.shape), -max_u, max_u)
    if random_eps > 0.0:
        take_random = rng.binomial(1, random_eps, size=(u.shape[0], 1))
        u = u + take_random * (rng.uniform(-max_u, max_u, size=u.shape) - u)
    return u.astype(np.float32)
