"""Episode-major replay storage (reference §6, decision D7). It stores and samples; it knows nothing of networks."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

# (episodes, batch size, rng, weights=(n_ep,) or None) -> transitions
Sampler = Callable[..., dict]
# episodes {key: (n, T_key, dim)} -> (n,) sampling weights
Priority = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def episode_shapes(dims: Mapping[str, int], T: int) -> dict[str, tuple[int, int]]:
    """Per-episode array shapes of decision D1: T+1 observations, T transitions."""
    return {
        "o": (T + 1, dims["o"]),
        "ag": (T + 1, dims["g"]),
        "g": (T, dims["g"]),
        "u": (T, dims["u"]),
        "info_is_success": (T, 1),
    }


class ReplayBuffer:
    """Fixed-capacity store of whole episodes with an injected transition sampler.

    Slots fill sequentially; once full, incoming episodes overwrite uniformly random slots (with replacement),
    as the reference does, rather than the oldest ones. With a ``priority``, each episode's sampling weight is
    computed once, when it is stored (or loaded), and handed to the sampler.
    """

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        size_in_episodes: int,
        sampler: Sampler,
        priority: Priority | None = None,
    ):
        if size_in_episodes < 1:
            raise ValueError(f"replay capacity must be at least one episode, got {size_in_episodes}")
        self.size = size_in_episodes
        self.sampler = sampler
        # key -> (size, T_key, dim), e.g. o: (size, T+1, dim_o); float32 as in the reference.
        self.buffers = {key: np.zeros((self.size, *shape), dtype=np.float32) for key, shape in shapes.items()}
        self.priority = priority
        self.weights = np.zeros(self.size if priority is not None else 0)  # (size,) with a priority, else empty
        self.current_size = 0
        self.n_transitions_stored = 0

    @property
    def full(self) -> bool:
        return self.current_size == self.size

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.buffers.values())

    def store_episode(self, episode: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Store a batch of episodes ``{key: (n, T_key, dim)}``; returns the slots used."""
        n = episode["u"].shape[0]
        idx = self._storage_idx(n, rng)
        for key, array in self.buffers.items():
            array[idx] = episode[key]
        if self.priority is not None:
            self.weights[idx] = self.priority(episode)
        self.n_transitions_stored += n * episode["u"].shape[1]
        return idx

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if self.current_size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer: store an episode first")
        # Slices are views: sampling never copies the stored episodes, only the drawn rows.
        episodes = {key: array[: self.current_size] for key, array in self.buffers.items()}
        if self.priority is None:
            return self.sampler(episodes, batch_size, rng)
        return self.sampler(episodes, batch_size, rng, weights=self.weights[: self.current_size])

    def _storage_idx(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if n > self.size:
            raise ValueError(f"cannot store {n} episodes in a buffer of {self.size}")
        free = self.size - self.current_size
        if n <= free:
            idx = np.arange(self.current_size, self.current_size + n)
        else:
            overflow = rng.integers(0, self.size if free == 0 else self.current_size, size=n - free)
            idx = np.concatenate([np.arange(self.current_size, self.size), overflow])
        self.current_size = min(self.size, self.current_size + n)
        return idx

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {f"buffers/{key}": array[: self.current_size] for key, array in self.buffers.items()}
        state["n_transitions_stored"] = np.array(self.n_transitions_stored)
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        sizes = {state[f"buffers/{key}"].shape[0] for key in self.buffers}
        if len(sizes) != 1 or sizes.pop() > self.size:
            raise ValueError("saved replay buffer does not fit this buffer's capacity")
        for key, array in self.buffers.items():
            saved = state[f"buffers/{key}"]
            if saved.shape[1:] != array.shape[1:]:
                raise ValueError(f"saved replay buffer field {key} has shape {saved.shape[1:]}, not {array.shape[1:]}")
            array[: len(saved)] = saved
        self.current_size = len(state["buffers/u"])
        if self.priority is not None:  # not saved: a function of the episodes
            self.weights[: self.current_size] = self.priority(
                {key: array[: self.current_size] for key, array in self.buffers.items()}
            )
        self.n_transitions_stored = int(state["n_transitions_stored"])
