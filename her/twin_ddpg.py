"""A second learner: DDPG with twin critics (clipped double Q) and, optionally, target-policy smoothing (TD3).

Not in the reference; chosen with ``--learner twin``. Both critics learn the same target, built from the smaller of
the two target critics' values; the actor's loss, the Q-filter and acting use the first critic, as in TD3.
With ``target_noise`` the target actor's action is perturbed by clipped Gaussian noise before it is rated. The noise
is drawn statelessly from (seed, update step), so that a resumed run draws what a straight one does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from her.ddpg import DDPG


def smoothed_action(u: tf.Tensor, z: tf.Tensor, noise: float, noise_clip: float, max_u: float) -> tf.Tensor:
    """clip(u + clip(noise * max_u * z, +-noise_clip * max_u), +-max_u), for standard normal draws ``z``."""
    bound = noise_clip * max_u
    return tf.clip_by_value(u + tf.clip_by_value(noise * max_u * z, -bound, bound), -max_u, max_u)


class TwinCriticDDPG(DDPG):
    n_critics = 2  # DDPG draws the second pair after its four networks: the first critic starts as DDPG's would

    def __init__(
        self, dims: Mapping[str, int], *, target_noise: float = 0.0, target_noise_clip: float = 0.5, **ddpg_args: Any
    ):
        super().__init__(dims, **ddpg_args)
        self.target_noise = target_noise
        self.target_noise_clip = target_noise_clip
        self.critic2, self.target_critic2 = self.critics[1], self.target_critics[1]

    def next_q(self, o_2n: tf.Tensor, g_n: tf.Tensor) -> tf.Tensor:
        u_2 = self.target_actor(o_2n, g_n)
        if self.target_noise > 0:
            # The critic's step count (0, 1, ...) makes a new draw every update, the same on every run of the seed.
            step = tf.cast(self.critic_opt.t, tf.int64)
            z = tf.random.stateless_normal(tf.shape(u_2), seed=tf.stack([tf.constant(self.seed, tf.int64), step]))
            u_2 = smoothed_action(u_2, z, self.target_noise, self.target_noise_clip, self.max_u)
        return tf.minimum(self.target_critic(o_2n, g_n, u_2), self.target_critic2(o_2n, g_n, u_2))
