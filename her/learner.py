"""What a run needs of the thing that learns: the interface the training loop, the checkpoints and the workers use.

``her.ddpg.DDPG`` is the reference's learner. A learner of another shape (twin critics, an ensemble) implements
this protocol instead of adding flags to DDPG; ``her.parts.make_learner`` chooses one from the configuration.
Its network state is what policy files and checkpoints hold: arrays keyed ``<network>/<index>`` and
``<normaliser>/<sum|sumsq|count>``, with at least an ``actor`` and a ``critic`` network for acting from a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from her.ddpg import Batch
from her.normalizer import Normalizer


class Learner(Protocol):
    o_stats: Normalizer  # the observation and goal statistics the networks see their inputs through
    g_stats: Normalizer

    def get_actions(self, o: np.ndarray, g: np.ndarray, *, noise_eps: float = 0.0, random_eps: float = 0.0,
                    rng: np.random.Generator | None = None, use_target_net: bool = False,
                    compute_Q: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Actions ``(n, dim_u)`` for ``o: (n, dim_o)``, ``g: (n, dim_g)``, and Q ``(n, 1)`` if asked."""
        ...

    def update_normalizer(self, transitions: Mapping[str, np.ndarray]) -> None:
        """Add transitions' ``o`` and ``g`` to the statistics."""
        ...

    def train_steps(self, batches: Batch) -> dict[str, np.ndarray]:
        """K gradient steps on stacked batches (``o: (K, B, dim_o)``); each metric of ``her.ddpg.METRICS`` as
        ``(K,)``."""
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
