"""Errors that end a run with one line on stderr instead of a traceback (importable without TensorFlow).

Every error the command line reports derives from one of two classes: ``UserError`` (bad input or a folder
that cannot be used: exit code 2) and ``TrainingError`` (training itself could not go on: exit code 1).
"""


class UserError(Exception):
    """Input that cannot run; the message says what was wrong and what to do. Exit code 2."""


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite values, MPI processes out of sync, a failed write). Exit code 1."""


class ResumeError(UserError):
    """A log folder whose run cannot be resumed (missing or damaged files, another task)."""


class RunInUseError(UserError):
    """The log folder is locked by another run."""


class WriteError(TrainingError):
    """A file of the run could not be written (full disk, permissions, a removed folder)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the run; the message says where to resume from."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM (schedulers, ``timeout``, ``kill``), raised by the command line's handler and treated like Ctrl-C."""


class CallbackError(TrainingError):
    """A callback of ``her.learn`` raised on another MPI rank: this rank stops with the run too."""
