"""DDPG learner: normalisers, actor and critic with target copies, losses, Adam updates, action selection.

Losses follow reference §10 and decision D4. A cycle's update steps run in one ``tf.function`` call, a graph
loop over batches stacked along a leading axis; on many MPI processes each step averages the flattened gradient
through the injected ``allreduce`` before its Adam step (D8).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from her.actor_critic import Actor, Critic
from her.learner import Batch
from her.normalizer import Normalizer
from her.numpy_actor import HEADS, ActingHead, explore

Allreduce = Callable[[np.ndarray], np.ndarray]

# What the graph step computes, in the order of DDPG's progress.csv columns.
METRICS = ("critic_loss", "actor_loss", "cloning_loss", "q_filter_pass")
# The columns the reference's learner logs its metrics under; the two of demonstrations only with bc_loss.
COLUMNS = {
    "critic_loss": "loss/critic",
    "actor_loss": "loss/actor",
    "cloning_loss": "loss/bc",
    "q_filter_pass": "demo/q_filter_pass",
}
DEMO_METRICS = ("cloning_loss", "q_filter_pass")


# ---- losses: small pure functions, so that tests can check them on hand-computed batches ----


def critic_target(r: tf.Tensor, q_next: tf.Tensor, gamma: float, clip_low: float, clip_high: float = 0.0) -> tf.Tensor:
    """y = clip(r + gamma * Q'(o_2, g, pi'(o_2, g)), clip_low, clip_high); every transition bootstraps (no done
    mask). ``clip_low`` is the reference's -1/(1-gamma) on Fetch; ``clip_high`` is 0, the reference's bound, for
    rewards <= 0 (Fetch's -1/0)."""
    return tf.clip_by_value(r + gamma * q_next, clip_low, clip_high)


def critic_loss(y: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(tf.stop_gradient(y) - q))


def actor_rl_loss(q_pi: tf.Tensor, pi: tf.Tensor, max_u: float, action_l2: float) -> tf.Tensor:
    """-mean Q(o, g, pi) + action_l2 * mean (pi / max_u)^2 over the whole batch, demo rows included."""
    return -tf.reduce_mean(q_pi) + action_l2 * tf.reduce_mean(tf.square(pi / max_u))


def q_filter_mask(q_u: tf.Tensor, q_pi: tf.Tensor, is_demo: tf.Tensor) -> tf.Tensor:
    """Demo rows whose demonstrated action the critic rates strictly above the actor's: (B,) float."""
    better = tf.cast(tf.reshape(q_u, [-1]) > tf.reshape(q_pi, [-1]), tf.float32)
    return is_demo * better


def cloning_loss(pi: tf.Tensor, u: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Behaviour cloning: a sum (not a mean) of squared action errors over the rows where ``mask`` is 1."""
    return tf.reduce_sum(mask[:, None] * tf.square(pi - u))


class Adam(tf.Module):
    """Adam with the reference's epsilon (1e-8); its moments are plain variables so they can be checkpointed."""

    def __init__(
        self,
        variables: list[tf.Variable],
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.params = list(variables)
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.params]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.params]
        self.t = tf.Variable(0.0, trainable=False)

    def apply(self, grads: list[tf.Tensor]) -> None:
        self.t.assign_add(1.0)
        step = self.lr * tf.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        for var, grad, m, v in zip(self.params, grads, self.m, self.v):
            m.assign(self.beta1 * m + (1.0 - self.beta1) * grad)
            v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(grad))
            var.assign_sub(step * m / (tf.sqrt(v) + self.epsilon))

    @property
    def state(self) -> list[tf.Variable]:
        return [*self.m, *self.v, self.t]


def _bumps_version(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def changing(self: DDPG, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:  # also after a failure half-way: some weights may have moved
            self._version += 1

    changing._bumps_version = True  # type: ignore[attr-defined]
    return changing


class DDPG:
    """The learner. It never touches the replay buffer: batches come in, metrics go out.

    Acting reads a numpy copy of the weights, rebuilt when ``_version`` moved. Every method named in
    ``changes_weights`` bumps it, in this class and in any subclass that overrides one or adds a name: a learner
    derived from this one cannot leave acting on stale weights by forgetting to.
    """

    head = "deterministic"  # her.numpy_actor.HEADS: the tanh actor and the critic that rates it
    n_critics = 1  # critics trained on the same target; acting and the actor's loss use the first
    changes_weights: tuple[str, ...] = ("update_normalizer", "train_steps", "update_target_net", "load_network_state")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.changes_weights:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_bumps_version", False):
                setattr(cls, name, _bumps_version(method))

    def __init__(
        self,
        dims: Mapping[str, int],
        *,
        hidden: int,
        layers: int,
        max_u: float,
        Q_lr: float,
        pi_lr: float,
        polyak: float,
        action_l2: float,
        clip_obs: float,
        norm_eps: float,
        norm_clip: float,
        gamma: float,
        clip_low: float,
        clip_high: float = 0.0,
        layer_norm: bool = False,
        bc_loss: bool = False,
        q_filter: bool = False,
        prm_loss_weight: float = 1e-3,
        aux_loss_weight: float = 0.0078,
        seed: int = 0,
        allreduce: Allreduce | None = None,
    ):
        self.dims = dict(dims)
        self.max_u = max_u
        self.polyak = polyak
        self.action_l2 = action_l2
        self.clip_obs = clip_obs
        self.norm_clip = norm_clip
        self.gamma = gamma
        self.clip_low = clip_low
        self.clip_high = clip_high
        self.layer_norm = layer_norm
        self.use_bc_loss = bc_loss
        self.use_q_filter = q_filter
        self.prm_loss_weight = prm_loss_weight
        self.aux_loss_weight = aux_loss_weight
        self.allreduce = allreduce
        self.metric_columns = {key: COLUMNS[key] for key in METRICS if bc_loss or key not in DEMO_METRICS}

        reduce = allreduce if allreduce is not None else (lambda x: x)
        self.o_stats = Normalizer(dims["o"], norm_eps, reduce)
        self.g_stats = Normalizer(dims["g"], norm_eps, reduce)
        # The graph reads the statistics from these mirrors; refreshed after every recompute.
        self.o_mean = tf.Variable(np.zeros(dims["o"], np.float32), trainable=False)
        self.o_std = tf.Variable(np.ones(dims["o"], np.float32), trainable=False)
        self.g_mean = tf.Variable(np.zeros(dims["g"], np.float32), trainable=False)
        self.g_std = tf.Variable(np.ones(dims["g"], np.float32), trainable=False)

        rng = np.random.default_rng(seed)
        self.seed = seed
        self._net_args = (dims["o"], dims["g"], dims["u"], hidden, layers, max_u)
        self.actor = Actor(*self._net_args, rng, name="actor", layer_norm=layer_norm)
        self.critic = Critic(*self._net_args, rng, name="critic", layer_norm=layer_norm)
        self.target_actor = Actor(*self._net_args, rng, name="target_actor", layer_norm=layer_norm)
        self.target_critic = Critic(*self._net_args, rng, name="target_critic", layer_norm=layer_norm)
        self.critics, self.target_critics = [self.critic], [self.target_critic]
        for i in range(2, self.n_critics + 1):  # drawn after the first four: the first critic starts as DDPG's
            self.critics.append(Critic(*self._net_args, rng, name=f"critic{i}", layer_norm=layer_norm))
            self.target_critics.append(Critic(*self._net_args, rng, name=f"target_critic{i}", layer_norm=layer_norm))
        self._copy(self.main_params, self.target_params)
        self.actor_opt = Adam(self.actor.params, pi_lr, name="actor_adam")
        self.critic_opt = Adam([v for critic in self.critics for v in critic.params], Q_lr, name="critic_adam")

        stacked = [tf.TensorSpec([None, None, dims[k]], tf.float32) for k in ("o", "g", "u")]
        rows = tf.TensorSpec([None, None], tf.float32)
        # One trace serves any number of steps and any batch size.
        self._train_steps = tf.function(self._train_steps_graph, input_signature=[*stacked, rows, stacked[0], rows])
        self.act_tf = tf.function(self._act_graph)
        # Acting reads a numpy copy of the weights (her.numpy_actor), refreshed lazily after anything changed them.
        self._version = 0
        self._snapshot: tuple[int, dict[str, ActingHead]] | None = None
        self._target_update = tf.function(self._target_update_graph)

    # ---- normalisation ----

    def _normalize(self, x: tf.Tensor, mean: tf.Variable, std: tf.Variable) -> tf.Tensor:
        x = tf.clip_by_value(x, -self.clip_obs, self.clip_obs)
        return tf.clip_by_value((x - mean) / std, -self.norm_clip, self.norm_clip)

    def _normalize_og(self, o: tf.Tensor, g: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self._normalize(o, self.o_mean, self.o_std), self._normalize(g, self.g_mean, self.g_std)

    @_bumps_version
    def update_normalizer(self, transitions: Mapping[str, np.ndarray]) -> None:
        """Add sampled transitions' o and g (clipped to +-clip_obs) to the statistics and recompute them."""
        self.o_stats.update(np.clip(transitions["o"], -self.clip_obs, self.clip_obs))
        self.g_stats.update(np.clip(transitions["g"], -self.clip_obs, self.clip_obs))
        self.o_stats.recompute_stats()
        self.g_stats.recompute_stats()
        self._sync_stat_mirrors()

    def _sync_stat_mirrors(self) -> None:
        self.o_mean.assign(self.o_stats.mean.astype(np.float32))
        self.o_std.assign(self.o_stats.std.astype(np.float32))
        self.g_mean.assign(self.g_stats.mean.astype(np.float32))
        self.g_std.assign(self.g_stats.std.astype(np.float32))

    # ---- acting ----

    def _act_graph(self, o: tf.Tensor, g: tf.Tensor, use_target_net: bool, compute_Q: bool):
        o_n, g_n = self._normalize_og(o, g)
        # As the reference's get_actions: with use_target_net every output comes from the target networks.
        actor, critic = (self.target_actor, self.target_critic) if use_target_net else (self.actor, self.critic)
        u = actor(o_n, g_n)
        q = critic(o_n, g_n, u) if compute_Q else tf.zeros([tf.shape(o)[0], 1])
        return u, q

    def get_actions(
        self,
        o: np.ndarray,
        g: np.ndarray,
        *,
        noise_eps: float = 0.0,
        random_eps: float = 0.0,
        rng: np.random.Generator | None = None,
        use_target_net: bool = False,
        compute_Q: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Actions ``(n, dim_u)`` for observations ``o: (n, dim_o)`` and goals ``g: (n, dim_g)``, and Q if asked.

        With ``noise_eps`` Gaussian noise of std ``noise_eps * max_u`` is added and the result clipped; then each
        env's action is replaced, with probability ``random_eps``, by a uniform random one (reference §4).
        """
        nets = self._numpy_nets()["target" if use_target_net else "main"]
        u, q = nets.act(o, g, compute_Q)
        return explore(u, self.max_u, noise_eps, random_eps, rng), q

    def _numpy_nets(self) -> dict[str, ActingHead]:
        """numpy copies of the main actor and critic and of the target pair, built by the head a policy file of
        this learner acts with, refreshed only after something changed the weights or the statistics."""
        if self._snapshot is None or self._snapshot[0] != self._version:
            stats = (self.o_stats.mean, self.o_stats.std, self.g_stats.mean, self.g_stats.std)
            settings = {
                "max_u": self.max_u,
                "clip_obs": self.clip_obs,
                "norm_clip": self.norm_clip,
                "layer_norm": self.layer_norm,
            }
            state = {
                f"{name}/{i}": var.numpy()
                for name, net in self.named_networks()[:4]
                for i, var in enumerate(net.params)
            }
            build = HEADS[self.head]
            nets = {
                name: build(state, prefix, self.dims, stats, settings)
                for name, prefix in [("main", ""), ("target", "target_")]
            }
            self._snapshot = (self._version, nets)
        return self._snapshot[1]

    # ---- learning ----

    def next_q(self, o_2n: tf.Tensor, g_n: tf.Tensor) -> tf.Tensor:
        """The value bootstrapped from: the target critic's Q of the target actor's action, ``(B, 1)``."""
        return self.target_critic(o_2n, g_n, self.target_actor(o_2n, g_n))

    def _train_step_graph(self, o, g, u, r, o_2, is_demo):
        o_n, g_n = self._normalize_og(o, g)
        o_2n = self._normalize(o_2, self.o_mean, self.o_std)
        y = critic_target(r[:, None], self.next_q(o_2n, g_n), self.gamma, self.clip_low, self.clip_high)

        with tf.GradientTape() as tape:
            qs = [critic(o_n, g_n, u) for critic in self.critics]
            loss_sum = tf.add_n([critic_loss(y, q_i) for q_i in qs])
        critic_grads = tape.gradient(loss_sum, self.critic_opt.params)
        q = qs[0]
        loss_q = loss_sum / len(qs)  # reported per critic, comparable with DDPG's (one critic: unchanged)

        with tf.GradientTape() as tape:
            pi = self.actor(o_n, g_n)
            q_pi = self.critic(o_n, g_n, pi)
            loss_rl = actor_rl_loss(q_pi, pi, self.max_u, self.action_l2)
            if self.use_bc_loss:
                mask = q_filter_mask(q, q_pi, is_demo) if self.use_q_filter else is_demo
                loss_bc = cloning_loss(pi, u, mask)
                loss_pi = self.prm_loss_weight * loss_rl + self.aux_loss_weight * loss_bc
            else:
                mask = is_demo
                loss_bc = tf.constant(0.0)
                loss_pi = loss_rl
        # The actor's gradient flows through the critic but only the actor's variables move.
        actor_grads = tape.gradient(loss_pi, self.actor.params)

        grads = critic_grads + actor_grads
        if self.allreduce is not None:
            grads = self._allreduce_grads(grads)
        n_critic = len(critic_grads)
        # Both updates use the gradients taken at the same pre-update parameters.
        self.critic_opt.apply(grads[:n_critic])
        self.actor_opt.apply(grads[n_critic:])

        n_demo = tf.reduce_sum(is_demo)
        return {
            "critic_loss": loss_q,
            "actor_loss": loss_pi,
            "cloning_loss": loss_bc,
            "q_filter_pass": tf.math.divide_no_nan(tf.reduce_sum(mask), n_demo),
        }

    def _train_steps_graph(self, o, g, u, r, o_2, is_demo):
        # A graph loop: one tf.function call per step would pay its dispatch cost every step (docs/performance.md).
        n_steps = tf.shape(o)[0]
        metrics = {key: tf.TensorArray(tf.float32, size=n_steps) for key in METRICS}
        for i in tf.range(n_steps):
            step = self._train_step_graph(o[i], g[i], u[i], r[i], o_2[i], is_demo[i])
            metrics = {key: metrics[key].write(i, step[key]) for key in METRICS}
        return {key: value.stack() for key, value in metrics.items()}

    def _allreduce_grads(self, grads: list[tf.Tensor]) -> list[tf.Tensor]:
        # One collective per update for all gradients, so ranks can never disagree on the order of calls.
        flat = tf.concat([tf.reshape(grad, [-1]) for grad in grads], axis=0)
        flat = tf.numpy_function(self.allreduce, [flat], tf.float32, stateful=True)
        flat = tf.ensure_shape(flat, [sum(int(np.prod(grad.shape)) for grad in grads)])
        sizes = [int(np.prod(grad.shape)) for grad in grads]
        return [tf.reshape(piece, grad.shape) for piece, grad in zip(tf.split(flat, sizes), grads)]

    @_bumps_version
    def train_steps(self, batches: Batch) -> dict[str, np.ndarray]:
        """K gradient steps, one per batch of ``batches`` (stacked: ``o: (K, B, dim_o)``); the metrics of
        ``metric_columns``, ``(K,)`` each."""
        metrics = self._train_steps(*(tf.convert_to_tensor(x, tf.float32) for x in batches))
        return {key: metrics[key].numpy() for key in self.metric_columns}

    def train(self, batch: Batch) -> dict[str, float]:
        """One gradient step on the critic and the actor (``o: (B, dim_o)``); returns the losses as floats."""
        metrics = self.train_steps(Batch(*(np.asarray(x)[None] for x in batch)))
        return {key: float(value[0]) for key, value in metrics.items()}

    def _target_update_graph(self):
        for target, main in zip(self.target_params, self.main_params):
            target.assign(self.polyak * target + (1.0 - self.polyak) * main)

    @_bumps_version
    def update_target_net(self) -> None:
        """target <- polyak * target + (1 - polyak) * main, for the actor and every critic."""
        self._target_update()

    # ---- parameters and state ----

    @property
    def main_params(self) -> list[tf.Variable]:
        return self.actor.params + [v for critic in self.critics for v in critic.params]

    @property
    def target_params(self) -> list[tf.Variable]:
        return self.target_actor.params + [v for critic in self.target_critics for v in critic.params]

    @staticmethod
    def _copy(source: list[tf.Variable], dest: list[tf.Variable]) -> None:
        for s, d in zip(source, dest):
            d.assign(s)

    # The names below are the keys of policy files and checkpoints: one list each, used by every save and load.
    def named_networks(self) -> list[tuple[str, Any]]:
        nets = [
            ("actor", self.actor),
            ("critic", self.critic),
            ("target_actor", self.target_actor),
            ("target_critic", self.target_critic),
        ]
        for i, (critic, target) in enumerate(zip(self.critics[1:], self.target_critics[1:]), start=2):
            nets += [(f"critic{i}", critic), (f"target_critic{i}", target)]
        return nets

    def named_normalizers(self) -> list[tuple[str, Normalizer]]:
        return [("o_stats", self.o_stats), ("g_stats", self.g_stats)]

    def named_optimizers(self) -> list[tuple[str, Adam]]:
        return [("actor_adam", self.actor_opt), ("critic_adam", self.critic_opt)]

    def network_state(self) -> dict[str, np.ndarray]:
        """Weights of every network of ``named_networks`` and the normaliser sums, keyed by name (the policy
        file's content)."""
        state: dict[str, np.ndarray] = {}
        for net_name, net in self.named_networks():
            for i, var in enumerate(net.params):
                state[f"{net_name}/{i}"] = var.numpy()
        for stats_name, stats in self.named_normalizers():
            for key, value in stats.state_dict().items():
                state[f"{stats_name}/{key}"] = value
        return state

    @_bumps_version
    def load_network_state(self, state: Mapping[str, np.ndarray]) -> None:
        for net_name, net in self.named_networks():
            for i, var in enumerate(net.params):
                value = state[f"{net_name}/{i}"]
                if value.shape != tuple(var.shape):
                    raise ValueError(
                        f"{net_name} layer {i} has shape {value.shape} in the file but {tuple(var.shape)} here"
                    )
                var.assign(value)
        for stats_name, stats in self.named_normalizers():
            stats.load_state_dict({key: state[f"{stats_name}/{key}"] for key in ("sum", "sumsq", "count")})
        self._sync_stat_mirrors()

    def optimizer_state(self) -> dict[str, np.ndarray]:
        return {
            f"{opt_name}/{i}": var.numpy()
            for opt_name, opt in self.named_optimizers()
            for i, var in enumerate(opt.state)
        }

    def load_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        for opt_name, opt in self.named_optimizers():
            for i, var in enumerate(opt.state):
                var.assign(state[f"{opt_name}/{i}"])

    def flat_params(self) -> np.ndarray:
        """Every weight, target weight and normaliser sum as one float64 vector (for cross-rank checks)."""
        parts = [var.numpy().ravel() for var in self.main_params + self.target_params]
        parts += [
            self.o_stats.sum,
            self.o_stats.sumsq,
            [self.o_stats.count],
            self.g_stats.sum,
            self.g_stats.sumsq,
            [self.g_stats.count],
        ]
        return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])

    def all_finite(self) -> bool:
        return all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in self.main_params)
