"""What a run needs of the thing that learns: the interface the training loop, the checkpoints and the workers use,
the batches it learns from, and the table of learners a configuration can name.

``her.ddpg.DDPG`` is the reference's learner. A learner of another shape (twin critics, an ensemble) implements
this protocol instead of adding flags to DDPG, and is one module plus one entry of ``LEARNERS``;
``her.parts.make_learner`` builds the entry the configuration names. Its network state is what policy files and
checkpoints hold: arrays keyed ``<network>/<index>`` and ``<normaliser>/<sum|sumsq|count>``, laid out as its
acting ``head`` (a key of ``her.numpy_actor.HEADS``) reads them.

Nothing here imports TensorFlow: the configuration reads the table to check and explain ``--learner``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np

from her.normalizer import Normalizer


class Batch(NamedTuple):
    """Transitions for one gradient step, or for K steps stacked along a leading axis (``o: (K, B, dim_o)``).

    Rows from demonstrations come last in each batch and have ``is_demo = 1``.
    """

    o: np.ndarray  # ([K,] B, dim_o)
    g: np.ndarray  # ([K,] B, dim_g)
    u: np.ndarray  # ([K,] B, dim_u)
    r: np.ndarray  # ([K,] B)
    o_2: np.ndarray  # ([K,] B, dim_o)
    is_demo: np.ndarray  # ([K,] B)


def make_batch(own: Mapping[str, np.ndarray], demo: Mapping[str, np.ndarray] | None = None) -> Batch:
    """Join sampled transitions into a Batch: the agent's own rows first, then the demo rows (D4).

    Works for one batch (``r: (n,)``) and for K stacked ones (``r: (K, n)``): rows are the last axis of ``r``.
    """
    parts = [own] if demo is None else [own, demo]

    def join(key: str) -> np.ndarray:
        axis = -1 if key == "r" else -2
        return np.concatenate([p[key] for p in parts], axis=axis).astype(np.float32, copy=False)

    r = join("r")
    is_demo = np.zeros(r.shape, dtype=np.float32)
    is_demo[..., own["r"].shape[-1] :] = 1.0
    return Batch(join("o"), join("g"), join("u"), r, join("o_2"), is_demo)


class Learner(Protocol):
    o_stats: Normalizer  # the observation and goal statistics the networks see their inputs through
    g_stats: Normalizer
    head: str  # how a policy file of its network state acts: a key of her.numpy_actor.HEADS

    @property
    def metric_columns(self) -> Mapping[str, str]:
        """The progress.csv column of each metric ``train_steps`` returns, in order; a metric not named here is
        logged under its own name, so a new learner's losses are never dropped."""
        ...

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
        """Actions ``(n, dim_u)`` for ``o: (n, dim_o)``, ``g: (n, dim_g)``, and Q ``(n, 1)`` if asked."""
        ...

    def update_normalizer(self, transitions: Mapping[str, np.ndarray]) -> None:
        """Add transitions' ``o`` and ``g`` to the statistics."""
        ...

    def train_steps(self, batches: Batch) -> dict[str, np.ndarray]:
        """K gradient steps on stacked batches (``o: (K, B, dim_o)``); each metric it logs as ``(K,)``."""
        ...

    def update_target_net(self) -> None: ...

    def network_state(self) -> dict[str, np.ndarray]: ...

    def load_network_state(self, state: Mapping[str, np.ndarray]) -> None: ...

    def optimizer_state(self) -> dict[str, np.ndarray]: ...

    def load_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None: ...

    def flat_params(self) -> np.ndarray:
        """Every weight and statistic as one float64 vector, for checking that MPI ranks agree."""
        ...

    def all_finite(self) -> bool: ...


class LearnerEntry(NamedTuple):
    """One learner a configuration can name."""

    make: Any  # the class (or "module:Name", imported when first built): called as make(dims, **arguments)
    help: str  # what it is, for --help
    keys: tuple[str, ...] = ()  # configuration keys of its own, passed to it by name

    def load(self) -> Any:
        if not isinstance(self.make, str):
            return self.make
        module, _, name = self.make.partition(":")
        return getattr(importlib.import_module(module), name)


# --learner -> the learner; her.config checks and explains the key from this table, her.parts builds from it.
LEARNERS: dict[str, LearnerEntry] = {
    "ddpg": LearnerEntry("her.ddpg:DDPG", "the reference"),
    "twin": LearnerEntry(
        "her.twin_ddpg:TwinCriticDDPG",
        "two critics, each trained on the smaller of their target values (TD3's clipped double Q)",
        keys=("target_noise", "target_noise_clip"),
    ),
}
