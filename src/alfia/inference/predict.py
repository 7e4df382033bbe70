"""Load a run directory; predict probabilities and labels; embed (the paper's Algorithm 2).

    run = load_run("runs/alfia")
    texts = read_inference_input("new_stays.parquet", run)   # cohort rows, a text table, or raw text
    preds, perf = predict(run, texts)                          # stay_id, split, prob, label (+ true label)
    emb, perf = embed(run, texts)                              # alf_0..alf_{d-1}, layer_weight_0..
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.cohorts.io import read_table_or_csv, read_utf8
from alfia.cohorts.validate import check_labels, row_name
from alfia.evaluation.metrics import predicted_death
from alfia.evaluation.thresholds import DECISION_POINT, run_thresholds
from alfia.runs import RunLayout, read_alfia_config
from alfia.runtime import TokenizedTexts, iterate_outputs, pad_token_id_of, resolve_device, set_threads, tokenize_texts
from alfia.text.encode import TextEncodingWarning
from alfia.text.table import TEXT_COLUMN, check_texts

STREAM_ROWS = 4096  # texts tokenised and scored at a time by predict/embed


@dataclass
class LoadedRun:
    """A trained ALFIA run, ready to predict: the model (eval mode), its configs, threshold, template."""

    run_dir: Path
    model: Any
    config: dict
    threshold: float
    threshold_source: str
    template: str | None
    device: torch.device
    calibrator: Any  # alfia.models.calibrator.Calibrator fitted on val (identity for runs trained before one)
    backend: str = "torch"  # or "onnxruntime" for an export folder (alfia export)
    export: dict | None = None  # an export folder's export.json

    @property
    def max_length(self) -> int:
        return int(self.model.max_length)

    @property
    def device_label(self) -> str:
        """Where the model runs, as Performance reports it: 'cpu', 'cuda:0', 'cpu, onnxruntime int8'."""
        if self.backend == "torch":
            return str(self.device)
        precision = (self.export or {}).get("model", {}).get("precision", "")
        return f"{self.device}, {self.backend} {precision}".rstrip()


@dataclass
class InferenceInput:
    """Texts to score, with the stays' identity and, when the input carried them, split and true label."""

    texts: list[str]
    stay_id: np.ndarray
    split: np.ndarray | None = None
    labels: np.ndarray | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Performance:
    """Measured cost of one predict/embed call."""

    n_samples: int
    batch_size: int
    seconds: float
    ms_per_sample: float
    # Peak resident memory of the process during the call, and that less the RSS at its start: measured only when
    # the call was asked to (``measure_memory=True``, as the benchmarks do), else None.
    peak_rss_mb: float | None
    rss_increase_mb: float | None
    device: str
    peak_gpu_mb: float | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def describe(self) -> str:
        gpu = f", peak GPU memory {self.peak_gpu_mb:.0f} MB" if self.peak_gpu_mb is not None else ""
        rss = (f"; peak RSS {self.peak_rss_mb:.0f} MB (+{self.rss_increase_mb:.0f} MB)"
               if self.peak_rss_mb is not None else "")
        return (f"{self.n_samples} samples in {self.seconds:.2f} s: {self.ms_per_sample:.1f} ms/sample "
                f"(batch size {self.batch_size}, {self.device}){rss}{gpu}")


def load_run(run_dir: str | os.PathLike, *, device: str = "auto", num_threads: int | None = None) -> LoadedRun:
    """Load a finished ALFIA run directory for inference (eval mode, no gradients).

    An export folder (``alfia export``) loads as well: its ONNX graph runs on onnxruntime instead of torch, with
    the run's own tokenizer, calibrator and threshold (copied into it)."""
    layout = RunLayout.of(run_dir).require()
    config = read_alfia_config(layout.root)
    set_threads(num_threads)
    backend, export = "torch", None
    if layout.is_export:
        from alfia.inference.onnx_runtime import load_onnx_model

        model, export = load_onnx_model(layout, device=device, num_threads=num_threads)
        backend, dev = "onnxruntime", torch.device("cpu")
    else:
        from alfia.models import AlfiaModel

        if not layout.fusion_head.exists():
            raise AlfiaError(f"{layout.root}: no trained model in this run ({layout.fusion_head.name} is missing); "
                             f"finish training first (alfia train ... --resume {layout.root})")
        model = AlfiaModel.from_pretrained(layout.root)
        dev = resolve_device(device)
        model.to(dev).eval()
    point = run_thresholds(layout)[DECISION_POINT]
    source = f"max {DECISION_POINT.upper()} on {point.chosen_on} ({layout.thresholds.name})"
    from alfia.models.calibrator import Calibrator

    return LoadedRun(layout.root, model, config, point.threshold, source, config.get("data", {}).get("template"), dev,
                     Calibrator.load_for_run(layout.calibration, config["train"].get("calibration")), backend, export)


def read_inference_input(path: str | os.PathLike, run: LoadedRun | None = None, *,
                         template: str | None = None) -> InferenceInput:
    """Texts from a file: a table with a ``text`` column (Parquet or CSV), cohort rows (Parquet or CSV,
    encoded with the run's template), or a plain text file with one text per line, whose ``stay_id`` is the
    line's 0-based index, like a table's row (blank lines are skipped, with a warning, and keep their index)."""
    path = Path(path)
    if not path.exists():
        raise AlfiaError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".txt", ".text"):
        lines = read_utf8(path).splitlines()
        index = [i for i, ln in enumerate(lines) if ln.strip()]
        if not index:
            raise AlfiaError(f"{path}: no text lines")
        blank = [i for i in range(index[-1]) if not lines[i].strip()]  # blank lines at the end renumber nothing
        if blank:
            warnings.warn(f"{path}: {len(blank)} blank line(s) skipped (the first: line {blank[0] + 1}); each "
                          f"text's stay_id stays its 0-based line index (line number - 1)", TextEncodingWarning,
                          stacklevel=2)
        return InferenceInput([lines[i] for i in index], np.asarray(index, dtype=np.int64), source=str(path))
    if suffix in (".parquet", ".csv", ".gz"):
        df, manifest = read_table_or_csv(path)
    else:
        raise AlfiaError(f"{path}: unknown input type '{suffix}'; give a .parquet or .csv table or a .txt file "
                         f"(one text per line)")
    written = (manifest.extra or {}).get("template") if manifest is not None else None
    if run is not None and TEXT_COLUMN in df.columns and written and run.template and written != run.template:
        warnings.warn(f"{path}: texts written with the {written!r} template, but {run.run_dir} was trained on "
                      f"{run.template!r} texts, so its scores of them extrapolate; to validate it on this source, "
                      f"give its cohort to `alfia evaluate --external` (mapped into the run's variant)",
                      TextEncodingWarning, stacklevel=2)
    return frame_to_input(df, str(path), run, template=template)


def frame_to_input(df: pd.DataFrame, source: str, run: LoadedRun | None = None, *,
                   template: str | None = None) -> InferenceInput:
    if TEXT_COLUMN not in df.columns:
        from alfia.text import encode_cohort

        chosen = template or (run.template if run is not None else None) or "auto"
        if chosen != "auto":  # a cohort of another CW-24 variant reaches the run's template mapped
            from alfia.cohorts.mapping import to_variant

            df = to_variant(df, chosen, source=source)
        df = encode_cohort(df, template=chosen, source=source)
    check_texts(df, source)
    if ID_COLUMN in df.columns and df[ID_COLUMN].duplicated().any():
        position = int(np.flatnonzero(df[ID_COLUMN].duplicated().to_numpy())[0])
        raise AlfiaError(f"{source}: column '{ID_COLUMN}' repeats stay {df[ID_COLUMN].iloc[position]} at "
                         f"{row_name(df, position)}; each row is one stay")
    labels = None
    if OUTCOME_COLUMN in df.columns and df[OUTCOME_COLUMN].notna().any():
        # New stays carry no label (an all-empty column); a label that is there must be 0 or 1.
        labels = check_labels(df, source)
    return InferenceInput(
        df[TEXT_COLUMN].tolist(),
        df[ID_COLUMN].to_numpy() if ID_COLUMN in df.columns else np.arange(len(df)),
        df[SPLIT_COLUMN].astype(str).to_numpy() if SPLIT_COLUMN in df.columns else None,
        labels, source)


class _PeakRSS:
    """Samples the process RSS in a background thread (every 5 ms: only for a call that measures, a benchmark's).

    torch's CPU tensors live outside Python's allocator, so tracemalloc would miss them; RSS does not.
    """

    def __init__(self, interval: float = 0.005):
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.start_rss = self._proc.memory_info().rss
        self.peak = self.start_rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        return False


def _run_batches(run: LoadedRun, inputs: InferenceInput, batch_size: int, want_embeddings: bool,
                 measure_memory: bool = False, progress=None):
    if batch_size < 1:
        raise AlfiaError(f"batch size must be >= 1, got {batch_size}")
    n = len(inputs.texts)
    logits = np.empty(n, dtype=np.float64)
    embeddings = layer_weights = None
    n_tokens = 0
    cuda = run.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(run.device)
    started = time.perf_counter()
    with _PeakRSS() if measure_memory else contextlib.nullcontext() as rss:
        # Token ids as Python lists cost ~36 bytes each (~2 GB for 200k texts of 300 tokens), so texts
        # are tokenised and scored STREAM_ROWS at a time; memory beyond the inputs stays flat in n.
        for start in range(0, n, STREAM_ROWS):
            data: TokenizedTexts = tokenize_texts(inputs.texts[start:start + STREAM_ROWS], run.model.tokenizer,
                                                  run.max_length)
            n_tokens += int(data.lengths.sum())
            for index, out in iterate_outputs(run.model, data, batch_size=batch_size,
                                              pad_token_id=pad_token_id_of(run.model.tokenizer), device=run.device,
                                              progress=progress):
                index = index + start
                logits[index] = out.logits.float().cpu().numpy().reshape(-1)
                if want_embeddings:
                    emb = out.embedding.float().cpu().numpy()
                    if embeddings is None:
                        embeddings = np.zeros((n, emb.shape[1]), dtype=np.float32)
                    embeddings[index] = emb
                    if out.layer_weights is not None:
                        w = out.layer_weights.float().cpu().numpy()
                        if layer_weights is None:
                            layer_weights = np.zeros((n, w.shape[1]), dtype=np.float32)
                        layer_weights[index] = w
            del data
        if cuda:
            torch.cuda.synchronize(run.device)
    seconds = time.perf_counter() - started
    perf = Performance(
        n_samples=n, batch_size=batch_size, seconds=seconds, ms_per_sample=1000.0 * seconds / max(n, 1),
        peak_rss_mb=rss.peak / 2**20 if rss is not None else None,
        rss_increase_mb=(rss.peak - rss.start_rss) / 2**20 if rss is not None else None,
        device=run.device_label,
        peak_gpu_mb=torch.cuda.max_memory_allocated(run.device) / 2**20 if cuda else None,
        extra={"max_length": run.max_length, "mean_tokens": n_tokens / n if n else 0.0})
    return logits, embeddings, layer_weights, perf


def _check_finite(run: LoadedRun, inputs: InferenceInput, ok: np.ndarray, what: str) -> None:
    """Nothing that is not a number leaves the model: NaN/inf come from damaged weights, never from a text."""
    bad = np.flatnonzero(~ok)
    if bad.size:
        raise AlfiaError(f"{run.run_dir}: the model gives no valid {what} for {bad.size} of {len(ok)} texts of "
                         f"{inputs.source or 'the input'} (NaN or inf; the first at stay_id {inputs.stay_id[bad[0]]}); "
                         f"its weights (fusion_head.safetensors, the encoder) may be damaged")


def predict(run: LoadedRun, inputs: InferenceInput, *, batch_size: int = 64,
            measure_memory: bool = False, progress=None) -> tuple[pd.DataFrame, Performance]:
    """Probabilities and labels at the run's threshold, one row per input, in input order.

    ``measure_memory``: sample the process RSS during the call (a benchmark's measurement; off, nothing polls).
    ``progress``: an ``alfia.progress.Step`` advanced by the texts scored."""
    logits, _, _, perf = _run_batches(run, inputs, batch_size, want_embeddings=False, measure_memory=measure_memory,
                                      progress=progress)
    prob = run.calibrator.transform(logits)
    _check_finite(run, inputs, np.isfinite(prob) & (prob >= 0) & (prob <= 1), "probability")
    out = pd.DataFrame({ID_COLUMN: inputs.stay_id})
    if inputs.split is not None:
        out[SPLIT_COLUMN] = inputs.split
    out["prob"] = prob
    out["pred_label"] = predicted_death(prob, run.threshold).astype(np.int8)
    if inputs.labels is not None:
        out[OUTCOME_COLUMN] = inputs.labels
    out.attrs["threshold"] = run.threshold
    return out, perf


def embed(run: LoadedRun, inputs: InferenceInput, *, batch_size: int = 64,
          measure_memory: bool = False, progress=None) -> tuple[pd.DataFrame, Performance]:
    """Algorithm 2: L2-normalised pooled (ALF) embeddings and layer weights, one row per stay.

    Columns: stay_id, split (if known), hospital_expire_flag (if known), alf_0..alf_{d-1},
    layer_weight_0..layer_weight_{N_f-1} (absent for poolers without layer weights: cls, mean, max).
    """
    _, embeddings, layer_weights, perf = _run_batches(run, inputs, batch_size, want_embeddings=True,
                                                      measure_memory=measure_memory, progress=progress)
    _check_finite(run, inputs, np.isfinite(embeddings).all(axis=1), "embedding")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings = embeddings / np.maximum(norms, 1e-12)  # Algorithm 2, line 19
    cols: dict[str, Any] = {ID_COLUMN: inputs.stay_id}
    if inputs.split is not None:
        cols[SPLIT_COLUMN] = inputs.split
    if inputs.labels is not None:
        cols[OUTCOME_COLUMN] = inputs.labels
    cols.update({f"alf_{j}": embeddings[:, j] for j in range(embeddings.shape[1])})
    if layer_weights is not None:
        cols.update({f"layer_weight_{j}": layer_weights[:, j] for j in range(layer_weights.shape[1])})
    return pd.DataFrame(cols), perf
