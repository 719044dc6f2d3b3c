"""DDPG + Hindsight Experience Replay (+ learning from demonstrations) in TensorFlow 2.

Train from Python with ``her.learn`` (``her.api``); act with a saved policy through ``her.policy.load``.
Importing the package stays light: TensorFlow is imported by the first ``learn``, and ``her.api`` when first named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from her.api import Run, learn, resume
    from her.callbacks import Callback

__version__ = "0.1.0"  # used only where the package is not installed (no her-tf2 metadata)
__all__ = ["Callback", "Run", "learn", "resume", "version"]

# The public names of her.api and her.callbacks, imported when first used (PEP 562).
_LAZY = {"learn": "her.api", "resume": "her.api", "Run": "her.api", "Callback": "her.callbacks"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'her' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])  # the lazy names too, for completion in notebooks


def version() -> str:
    """The installed her-tf2 version, from the package metadata; ``__version__`` without an installation."""
    from importlib import metadata

    try:
        return metadata.version("her-tf2")
    except metadata.PackageNotFoundError:
        return __version__
