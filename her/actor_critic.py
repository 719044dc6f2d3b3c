"""Actor and critic MLPs (reference §9): separate towers, ReLU, Glorot-uniform kernels, zero biases.

``layer_norm`` (not in the reference, off by default) normalises every hidden layer before its ReLU, with a learned
scale and offset, as mrl's DDPG+HER does.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

LAYER_NORM_EPS = 1e-5  # as PyTorch's LayerNorm, which mrl uses


def layer_norm(x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Standardise each row over its features, then scale and shift: ``x`` is ``(batch, width)``."""
    centred = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    # Centred once and squared from there: about 10% cheaper per update than tf.nn.moments here.
    var = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
    return centred * tf.math.rsqrt(var + LAYER_NORM_EPS) * scale + offset


class MLP(tf.Module):
    """Dense layers ``sizes[0] -> ... -> sizes[-1]`` with ReLU between them (after a LayerNorm if ``layer_norm``)
    and a linear output."""

    def __init__(self, sizes: list[int], rng: np.random.Generator, name: str | None = None, layer_norm: bool = False):
        super().__init__(name=name)
        self.kernels = []
        self.biases = []
        self.scales: list[tf.Variable] = []  # LayerNorm's, one per hidden layer; none without layer_norm
        self.offsets: list[tf.Variable] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
            self.kernels.append(tf.Variable(kernel, name="kernel"))
            self.biases.append(tf.Variable(np.zeros(fan_out, np.float32), name="bias"))
        if layer_norm:
            for width in sizes[1:-1]:
                self.scales.append(tf.Variable(np.ones(width, np.float32), name="scale"))
                self.offsets.append(tf.Variable(np.zeros(width, np.float32), name="offset"))

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            x = tf.matmul(x, kernel) + bias
            if i < last:
                if self.scales:
                    x = layer_norm(x, self.scales[i], self.offsets[i])
                x = tf.nn.relu(x)
        return x

    @property
    def params(self) -> list[tf.Variable]:
        """Variables in a fixed order, the order of saved files: kernel_0, bias_0, [scale_0, offset_0,] kernel_1,
        ... (the output layer has no LayerNorm)."""
        params = []
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            params += [kernel, bias]
            if i < len(self.scales):
                params += [self.scales[i], self.offsets[i]]
        return params


class Actor(tf.Module):
    """pi(o, g) = max_u * tanh(MLP([o_n, g_n])) on normalised inputs."""

    def __init__(
        self,
        dim_o: int,
        dim_g: int,
        dim_u: int,
        hidden: int,
        layers: int,
        max_u: float,
        rng: np.random.Generator,
        name: str = "actor",
        layer_norm: bool = False,
    ):
        super().__init__(name=name)
        self.max_u = max_u
        self.net = MLP([dim_o + dim_g] + [hidden] * layers + [dim_u], rng, layer_norm=layer_norm)

    def __call__(self, o_n: tf.Tensor, g_n: tf.Tensor) -> tf.Tensor:
        return self.max_u * tf.tanh(self.net(tf.concat([o_n, g_n], axis=-1)))

    @property
    def params(self) -> list[tf.Variable]:
        return self.net.params


class Critic(tf.Module):
    """Q(o, g, u) = MLP([o_n, g_n, u / max_u]) on normalised o, g: (batch, 1)."""

    def __init__(
        self,
        dim_o: int,
        dim_g: int,
        dim_u: int,
        hidden: int,
        layers: int,
        max_u: float,
        rng: np.random.Generator,
        name: str = "critic",
        layer_norm: bool = False,
    ):
        super().__init__(name=name)
        self.max_u = max_u
        self.net = MLP([dim_o + dim_g + dim_u] + [hidden] * layers + [1], rng, layer_norm=layer_norm)

    def __call__(self, o_n: tf.Tensor, g_n: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
        return self.net(tf.concat([o_n, g_n, u / self.max_u], axis=-1))

    @property
    def params(self) -> list[tf.Variable]:
        return self.net.params
