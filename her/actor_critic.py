"""Actor and critic MLPs (reference §9): separate towers, ReLU, Glorot-uniform kernels, zero biases."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class MLP(tf.Module):
    """Dense layers ``sizes[0] -> ... -> sizes[-1]`` with ReLU between them and a linear output."""

    def __init__(self, sizes: list[int], rng: np.random.Generator, name: str | None = None):
        super().__init__(name=name)
        self.kernels = []
        self.biases = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
            self.kernels.append(tf.Variable(kernel, name="kernel"))
            self.biases.append(tf.Variable(np.zeros(fan_out, np.float32), name="bias"))

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            x = tf.matmul(x, kernel) + bias
            if i < last:
                x = tf.nn.relu(x)
        return x

    @property
    def params(self) -> list[tf.Variable]:
        """Variables in a fixed order: kernel_0, bias_0, kernel_1, ... (the order of saved files)."""
        return [v for pair in zip(self.kernels, self.biases) for v in pair]


class Actor(tf.Module):
    """pi(o, g) = max_u * tanh(MLP([o_n, g_n])) on normalised inputs."""

    def __init__(self, dim_o: int, dim_g: int, dim_u: int, hidden: int, layers: int, max_u: float,
                 rng: np.random.Generator, name: str = "actor"):
        super().__init__(name=name)
        self.max_u = max_u
        self.net = MLP([dim_o + dim_g] + [hidden] * layers + [dim_u], rng)

    def __call__(self, o_n: tf.Tensor, g_n: tf.Tensor) -> tf.Tensor:
        return self.max_u * tf.tanh(self.net(tf.concat([o_n, g_n], axis=-1)))

    @property
    def params(self) -> list[tf.Variable]:
        return self.net.params


class Critic(tf.Module):
    """Q(o, g, u) = MLP([o_n, g_n, u / max_u]) on normalised o, g: (batch, 1)."""

    def __init__(self, dim_o: int, dim_g: int, dim_u: int, hidden: int, layers: int, max_u: float,
                 rng: np.random.Generator, name: str = "critic"):
        super().__init__(name=name)
        self.max_u = max_u
        self.net = MLP([dim_o + dim_g + dim_u] + [hidden] * layers + [1], rng)

    def __call__(self, o_n: tf.Tensor, g_n: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
        return self.net(tf.concat([o_n, g_n, u / self.max_u], axis=-1))

    @property
    def params(self) -> list[tf.Variable]:
        return self.net.params
