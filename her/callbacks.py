"""Callbacks: your code, called after every committed epoch of ``her.learn`` with the epoch's row.

A callback is any callable taking the row (the epoch's line of progress.csv, a dict) that returns ``True`` to stop
the run, or ``None``/``False`` to let it go on::

    def stop_at_0_95(row):
        return row["test/success_rate"] >= 0.95

    her.learn(env="FetchReach", callback=stop_at_0_95)

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from her import mpi
from her.errors import CallbackError

__all__ = ["Callback", "CallbackError", "EpochCallbacks"]


class Callback(Protocol):
    """Called with each committed epoch's row; ``True`` stops the run after that epoch, ``None`` or ``False`` go on.

    A stop is clean: the epoch's checkpoint is committed and its policy files are written, as when
    ``stop_success_rate`` stops a run. An exception ends the run like any other error, the last checkpoint kept.
    """

    def __call__(self, row: Mapping[str, float]) -> bool | None: ...


Callbacks = Callback | Sequence[Callback] | None


class EpochCallbacks:
    """The callbacks as the trainer calls them: on every MPI rank, with the same row, to one stop decision."""

    def __init__(self, callbacks: Callbacks, comm: mpi.SingleProcess | mpi.MPIComm):
        if callbacks is None:
            self.callbacks: list[Callback] = []
        elif callable(callbacks):
            self.callbacks = [callbacks]
        else:
            self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not callable(callback):
                raise TypeError(f"a callback must be callable (a function of the epoch's row), got {callback!r}")
        self.comm = comm
        # The user's own exception once after_epoch has re-raised it: her.learn tells it from a crash by it.
        self.error: BaseException | None = None

    def after_epoch(self, row: Mapping[str, float]) -> bool:
        """Call every callback with rank 0's row (its time/total is rank 0's clock); whether the run stops.

        One rank's True stops every rank. An exception is raised on its own rank as it is, and as a
        ``CallbackError`` on the others, so that no rank waits for a rank that left.
        """
        row = self.comm.bcast(dict(row))
        stop, error = False, None
        try:
            for callback in self.callbacks:  # every one sees every row, even after another asked to stop
                verdict: Any = callback(dict(row))
                if verdict not in (None, True, False):
                    raise TypeError(f"a callback returns True (stop), False or None (go on), got {verdict!r}")
                stop = stop or bool(verdict)
        except Exception as e:  # noqa: BLE001 - whatever it is, every rank must hear of it
            error = e
        verdicts = self.comm.allgather((stop, None if error is None else f"{type(error).__name__}: {error}"))
        if error is not None:
            self.error = error
            raise error
        for rank, (_, failure) in enumerate(verdicts):
            if failure is not None:
                raise CallbackError(
                    f"the callback raised {failure} on MPI rank {rank}: the run stops after its last committed epoch"
                )
        return any(verdict for verdict, _ in verdicts)
