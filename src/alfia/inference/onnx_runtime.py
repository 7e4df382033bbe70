"""An export folder's ONNX graph (``alfia export``), run by onnxruntime in place of the torch model.

``OnnxModel`` offers what ``predict`` and ``embed`` use of an ``AlfiaModel``: ``tokenizer``,
``max_length``, ``eval()`` and a call ``(input_ids, attention_mask) -> AlfiaOutput``. Batches, padding,
the calibrator and the threshold stay those of the torch path, so an export is scored exactly as its run is,
up to the graph's float rounding (and int8's quantisation error).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alfia.atomic import read_json_object, sha256_file
from alfia.errors import AlfiaError
from alfia.machine import resolve_jobs
from alfia.models.alfia_model import AlfiaOutput
from alfia.runs import RunLayout

EXPORT_FORMAT = 1  # export.json's "format": what this code reads
INPUT_NAMES = ("input_ids", "attention_mask")


def session_options(num_threads: int | None):
    """onnxruntime's options for this machine: ``num_threads`` intra-op threads (None: the cores), every
    graph optimisation, quiet logs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = resolve_jobs(num_threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


def open_session(path: str | os.PathLike, num_threads: int | None = None):
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), session_options(num_threads), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own error types for a missing, corrupt or foreign graph
        reason = " ".join(str(e).split())
        raise AlfiaError(f"{path}: onnxruntime cannot load this graph ({type(e).__name__}: {reason[:300]})") from None


class OnnxModel:
    """The exported graph behind the interface ``predict`` and ``embed`` use of ``AlfiaModel``."""

    training = False

    def __init__(self, path: str | os.PathLike, tokenizer: Any, max_length: int, *,
                 num_threads: int | None = None, precision: str = "fp32") -> None:
        self.path = Path(path)
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.precision = precision
        self.session = open_session(self.path, num_threads)
        inputs = [i.name for i in self.session.get_inputs()]
        if tuple(inputs) != INPUT_NAMES:
            raise AlfiaError(f"{self.path}: the graph takes inputs {inputs}; an ALFIA export takes "
                             f"{', '.join(INPUT_NAMES)}")
        self.output_names = [o.name for o in self.session.get_outputs()]
        if self.output_names[:2] != ["logits", "embedding"]:
            raise AlfiaError(f"{self.path}: the graph's outputs are {self.output_names}; an ALFIA export gives "
                             f"logits, embedding (and layer_weights)")

    def eval(self) -> "OnnxModel":
        return self

    def train(self, mode: bool = True) -> "OnnxModel":
        if mode:
            raise AlfiaError(f"{self.path}: an ONNX export cannot be trained; train the source run")
        return self

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's outputs by name for one padded batch of int64 token ids and mask."""
        feed = {"input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
                "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64)}
        return dict(zip(self.output_names, self.session.run(self.output_names, feed)))

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> AlfiaOutput:
        ids = input_ids.detach().cpu().numpy()
        mask = np.ones_like(ids) if attention_mask is None else attention_mask.detach().cpu().numpy()
        out = self.run(ids, mask)
        weights = out.get("layer_weights")
        return AlfiaOutput(logits=torch.from_numpy(out["logits"]), embedding=torch.from_numpy(out["embedding"]),
                           layer_weights=None if weights is None else torch.from_numpy(weights))


def read_export_record(layout: RunLayout) -> dict:
    """export.json, checked: its format, and a model.onnx whose SHA-256 is the one recorded."""
    record = read_json_object(layout.export_record, missing="no export.json: not an export folder")
    if record.get("format") != EXPORT_FORMAT:
        raise AlfiaError(f"{layout.export_record}: export format {record.get('format')!r}; this version of ALFIA "
                         f"reads format {EXPORT_FORMAT} (export the run again)")
    model = record.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("sha256"), str):
        raise AlfiaError(f"{layout.export_record}: no 'model' section with the graph's sha256")
    if not layout.onnx_model.is_file():
        raise AlfiaError(f"{layout.onnx_model}: the export's graph is missing")
    if sha256_file(layout.onnx_model) != model["sha256"]:
        raise AlfiaError(f"{layout.onnx_model}: SHA-256 differs from the one export.json records; the file was "
                         f"changed or is damaged (export the run again)")
    return record


def load_onnx_model(layout: RunLayout, *, device: str = "auto", num_threads: int | None = None
                    ) -> tuple[OnnxModel, dict]:
    """(the export's graph ready to run, its export.json)."""
    from transformers import AutoTokenizer

    if device not in ("auto", "cpu"):
        raise AlfiaError(f"{layout.root}: an export runs on the CPU through onnxruntime, not on {device!r}; "
                         f"score the source run ({layout.root}/export.json names it) for another device")
    record = read_export_record(layout)
    if not layout.tokenizer.is_dir():
        raise AlfiaError(f"{layout.tokenizer}: the export's tokenizer folder is missing")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(layout.tokenizer))
    except Exception as e:  # transformers raises many types for a damaged folder
        raise AlfiaError(f"{layout.tokenizer}: the tokenizer cannot be loaded ({type(e).__name__}: {e})") from None
    model = OnnxModel(layout.onnx_model, tokenizer, int(record["model"]["max_length"]), num_threads=num_threads,
                      precision=str(record["model"].get("precision", "fp32")))
    return model, record
