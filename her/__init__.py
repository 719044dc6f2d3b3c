"""DDPG + Hindsight Experience Replay (+ learning from demonstrations) in TensorFlow 2."""

__version__ = "0.1.0"  # used only where the package is not installed (no her-tf2 metadata)


def version() -> str:
    """The installed her-tf2 version, from the package metadata; ``__version__`` without an installation."""
    from importlib import metadata

    try:
        return metadata.version("her-tf2")
    except metadata.PackageNotFoundError:
        return __version__
