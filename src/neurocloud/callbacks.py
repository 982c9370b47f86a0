"""``nc.callbacks``: the engine's callbacks and ``ModelCheckpoint``, which writes to disk.

The engine (``neurocloud.nn``) does no I/O, so the checkpoint lives in
:mod:`neurocloud.checkpoint`; this module gathers both under one name.

>>> import neurocloud as nc
>>> nc.callbacks.ModelCheckpoint("runs/iris", every=5).every
5
"""

from neurocloud.checkpoint import Checkpoint, ModelCheckpoint, load_checkpoint
from neurocloud.nn.callbacks import Callback, EarlyStopping, History, ProgressBar

__all__ = [
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "ModelCheckpoint",
    "ProgressBar",
    "load_checkpoint",
]
