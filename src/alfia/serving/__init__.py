"""Serving a trained run: the HTTP service (``alfia serve``) over a run directory or an export folder.

It sits above ``inference`` (``load_run``, ``frame_to_input``, ``predict``: the same scoring as ``alfia predict``)
and below ``api``/``cli``. The export itself (``alfia export``) lives in ``inference.export``, so that every
command that predicts from a run can read an export folder.
"""

from alfia.serving.app import InputError, ServeSettings, create_app, serve
from alfia.serving.batcher import MicroBatcher, Overloaded, ShuttingDown

__all__ = ["InputError", "MicroBatcher", "Overloaded", "ServeSettings", "ShuttingDown", "create_app", "serve"]
