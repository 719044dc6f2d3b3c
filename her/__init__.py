"""DDPG + Hindsight Experience Replay (+ learning from demonstrations) in TensorFlow 2."""

__version__ = "0.1.0"
