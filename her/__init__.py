"""DDPG + Hindsight Experience Replay (+ learning from demonstrations) in TensorFlow 2."""

import os

# TensorFlow prints start-up chatter on stderr at import time; only its warnings and errors matter here.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
