"""Inference on a trained run directory: load it, predict probabilities and labels, embed (Algorithm 2)."""

from alfia.inference.predict import (
    InferenceInput, LoadedRun, Performance, embed, frame_to_input, load_run, predict, read_inference_input,
)

__all__ = ["InferenceInput", "LoadedRun", "Performance", "embed", "frame_to_input", "load_run", "predict",
           "read_inference_input"]
