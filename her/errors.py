"""Errors that end a run with one line on stderr instead of a traceback (importable without TensorFlow)."""


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite values, workers out of sync); the message says where and why."""
