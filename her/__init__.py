"""DDPG + Hindsight Experience Replay (+ learning from demonstrations) in TensorFlow 2.

Train from Python with ``her.learn`` (``her.api``); act with a saved policy through ``her.policy.load``.
Importing the package stays light: TensorFlow is imported by the first ``learn``, and ``her.api`` when first named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from her.api import Run, learn, resume
    from her.callbacks import Callback
    from her.versions import __version__ as __version__
    from her.versions import version

__all__ = ["Callback", "Run", "learn", "resume", "version"]

# The public names of her.api, her.callbacks and her.versions, imported when first used (PEP 562). The version
# lives in her.versions, so that no module of the package imports the package, which names her.api.
_LAZY = {
    "learn": "her.api",
    "resume": "her.api",
    "Run": "her.api",
    "Callback": "her.callbacks",
    "version": "her.versions",
    "__version__": "her.versions",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'her' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])  # the lazy names too, for completion in notebooks
