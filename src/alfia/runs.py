"""The run directory, named in one place.

Every trained model of the project, ALFIA or a tabular baseline, leaves a run directory. The
evaluation module and ``alfia compare`` read only what is described here, so any model can be scored
and compared with any other::

    RUN_DIR/
      config.json            full typed config of the run (rerun from it); an ALFIA run's "model" section
                             is the one copy of its AlfiaConfig (save_pretrained and from_pretrained use it)
      predictions.parquet    stay_id, split, label, prob for the val and test rows
      thresholds.json        operating points (max F1, max F2) chosen on the val predictions
      metrics.json           written by ``alfia evaluate``: metrics with CIs, thresholds
      figures/               ROC, PR, calibration, confusion matrix, training curves (PNG)
      # ALFIA runs also hold
      history.jsonl          one JSON line per epoch: train loss, val AUPRC/AUROC
      backbone.json          backbone/tokenizer reference (HF id, local path, or the offline default)
      adapter/               LoRA adapter in peft's own format (--finetune lora with --train-layers > 0)
      encoder.safetensors    fine-tuned encoder weights (--finetune full: the trained top layers, or all)
      fusion_head.safetensors  ALF and ACH weights
      checkpoint/            last epoch's full training state, for --resume (deleted once the run finishes,
                             unless --keep-checkpoint)
      calibration.json       post-hoc calibrator fitted on val (Platt/isotonic), applied to every probability
      external/<name>/       one folder per external cohort the run scored (``--external``):
        predictions.parquet  stay_id, split ("external"), label, prob for every stay of that cohort
        metrics.json         metrics with CIs (thresholds from the run's own val rows)
        shift.json           variable mapping, imputed variables, covariate and outcome shift
      # baseline runs (alfia baselines / boost) also hold
      model/                 the fitted model with its preprocessing, never pickled (alfia.baselines.saved)
      # federated runs (alfia federated train) also hold
      federation.json        the sites (which hospitals, rows, deaths), skipped hospitals, FedAvg settings, engine,
                             and per round: sites trained, federated train/val loss, bytes exchanged
      sites.csv              the global model's val/test metrics per site, with 95% CIs
      centralised/           with --centralised: an ordinary ALFIA run trained on the same rows in one place
      # time-series runs (alfia series train) also hold
      model.safetensors      the sequence model's weights (best validation AUPRC)
      preprocessing.json     imputation and normalisation fitted on the train split

An ALFIA export (``alfia export RUN --out DIR``) is a run directory without torch weights, served by
onnxruntime; ``alfia predict``, ``embed``, ``serve``, ``ALFIAClassifier.from_pretrained`` and
``alfia evaluate --external`` read it like the run it came from::

    EXPORT_DIR/
      export.json            what was exported: precision, ONNX inputs/outputs, agreement with torch,
                             the source run's SHA-256 (MODEL_FILES), versions, the model card summary
      model.onnx             encoder (LoRA merged) + pooler + head: input_ids, attention_mask -> logits,
                             embedding (+ layer_weights); fp32, or int8 with --quantize int8
      tokenizer/             the run's tokenizer (save_pretrained)
      card.md                the source run's model card (TRIPOD+AI)
      config.json, backbone.json, calibration.json, thresholds.json, predictions.parquet (+ metrics.json)
                             copied from the run: the same calibrator, operating threshold and val rows
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.atomic import read_json_object, write_atomic
from alfia.cohorts.schema import ID_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError

PREDICTION_COLUMNS = (ID_COLUMN, SPLIT_COLUMN, "label", "prob")
UNCALIBRATED_COLUMN = "prob_uncalibrated"  # optional: before the run's post-hoc calibrator
EXTERNAL_SPLIT = "external"  # the split value of every row of an external cohort's predictions
EXTERNAL_DIR = "external"  # RUN_DIR/external/<name>/ (RunLayout.external)
# What an ALFIA run's model is made of, with the calibrator, operating threshold and the val rows they were
# chosen on: the files whose SHA-256 an export records (RunLayout.model_sha256).
MODEL_FILES = ("config.json", "backbone.json", "fusion_head.safetensors", "encoder.safetensors",
               "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "calibration.json",
               "thresholds.json", "predictions.parquet")


class RunKind(Enum):
    """What made a run, as its config.json records it (:func:`run_kind`). One member per kind: adding a kind
    of model is one line here, (the value its config.json records, whether it is ALFIA's own model: marked ★
    in ``alfia compare`` and tested against the best baseline, described as ALFIA by the card)."""

    ALFIA = ("alfia", True)              # alfia train / ALFIAClassifier (config.json: model_type)
    ALFIA_BOOST = ("alfia-boost", True)  # alfia boost: a gradient-boosted model over ALFIA's embeddings
    ALFIA_NN = ("alfia-nn", True)        # alfia boost --learners mlp
    BASELINE = ("baseline", False)       # a tabular model of the zoo (alfia baselines)
    ENSEMBLE = ("ensemble", False)       # the zoo's greedy ensemble
    SERIES = ("series", False)           # alfia series train (hourly time series)
    LEMOF = ("lemof", False)             # alfia lemof train: level-guided fusion of text, series and tabular row
    FEDERATED = ("federated", False)     # alfia federated train: FedAvg across sites (Flower)
    EXTERNAL = ("external", False)       # external/<name>/ of a run: another cohort scored by that run's model
    OTHER = ("other", False)             # a config.json that records no kind (written outside ALFIA's commands)

    def __new__(cls, value: str, is_alfia: bool):
        member = object.__new__(cls)
        member._value_ = value
        member.is_alfia = is_alfia
        return member

    def __str__(self) -> str:
        return self.value


def run_kind(config: dict, source: str | os.PathLike | None = None) -> RunKind:
    """The kind of the run whose config.json is ``config``: its ``model_type`` (ALFIA writes "alfia") or its
    ``model_family`` (baselines, boost, series); an external validation record (``external_validation``) is
    EXTERNAL; a config naming neither is OTHER. Never guessed from the run's name; a kind no member holds is an
    AlfiaError naming ``source``."""
    if not isinstance(config, dict):
        raise AlfiaError(f"{source or 'config.json'}: expected a JSON object, got {type(config).__name__}")
    if "external_validation" in config:
        return RunKind.EXTERNAL
    recorded = config.get("model_type") or config.get("model_family")
    if recorded is None:
        return RunKind.OTHER
    try:
        return RunKind(str(recorded).lower())
    except ValueError:
        known = ", ".join(k.value for k in RunKind)
        key = "model_type" if config.get("model_type") else "model_family"
        raise AlfiaError(f"{source or 'config.json'}: unknown {key} {recorded!r}; a run's kind is one of "
                         f"{known}") from None


def kind_of_run(run_dir: str | os.PathLike) -> RunKind:
    """:func:`run_kind` of RUN_DIR/config.json (OTHER when the run has none)."""
    return run_kind(read_config(run_dir), RunLayout.of(run_dir).config)


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @classmethod
    def of(cls, root: "str | os.PathLike | RunLayout") -> "RunLayout":
        return root if isinstance(root, RunLayout) else cls(Path(root))

    config = property(lambda self: self.root / "config.json")
    predictions = property(lambda self: self.root / "predictions.parquet")
    metrics = property(lambda self: self.root / "metrics.json")
    figures = property(lambda self: self.root / "figures")
    history = property(lambda self: self.root / "history.jsonl")
    backbone = property(lambda self: self.root / "backbone.json")
    adapter = property(lambda self: self.root / "adapter")
    encoder_weights = property(lambda self: self.root / "encoder.safetensors")
    fusion_head = property(lambda self: self.root / "fusion_head.safetensors")
    checkpoint = property(lambda self: self.root / "checkpoint")
    calibration = property(lambda self: self.root / "calibration.json")
    thresholds = property(lambda self: self.root / "thresholds.json")
    shift = property(lambda self: self.root / "shift.json")  # in external/<name>/ only

    externals = property(lambda self: self.root / EXTERNAL_DIR)  # one folder per external cohort

    def external(self, name: str) -> "RunLayout":
        """The layout of external/<name>/: predictions, metrics and shift of one external cohort."""
        return RunLayout(self.externals / name)

    def external_names(self) -> list[str]:
        if not self.externals.is_dir():
            return []
        return sorted(p.name for p in self.externals.iterdir() if RunLayout(p).predictions.exists())

    @property
    def is_external(self) -> bool:
        """True for an external/<name>/ folder inside a run directory."""
        return self.root.parent.name == EXTERNAL_DIR and RunLayout(self.root.parent.parent).config.exists()

    baseline_model = property(lambda self: self.root / "model")  # a baseline run's saved model (baselines.saved)
    federation = property(lambda self: self.root / "federation.json")  # a federated run's sites and rounds
    sites = property(lambda self: self.root / "sites.csv")
    centralised = property(lambda self: self.root / "centralised")
    series_weights = property(lambda self: self.root / "model.safetensors")
    preprocessing = property(lambda self: self.root / "preprocessing.json")
    # an export folder (alfia export)
    export_record = property(lambda self: self.root / "export.json")
    onnx_model = property(lambda self: self.root / "model.onnx")
    tokenizer = property(lambda self: self.root / "tokenizer")
    card = property(lambda self: self.root / "card.md")
    # alfia analyze / alfia robustness write here by default; alfia card reads them from here
    analysis = property(lambda self: self.root / "analysis")
    robustness = property(lambda self: self.root / "robustness")

    @property
    def is_export(self) -> bool:
        """True for a folder written by ``alfia export`` (it holds export.json)."""
        return self.export_record.is_file()

    def model_files(self) -> list[Path]:
        """The files that make an ALFIA run's model and its operating point (MODEL_FILES), those present."""
        return [self.root / name for name in MODEL_FILES if (self.root / name).is_file()]

    def model_sha256(self) -> tuple[str, dict[str, str]]:
        """(one SHA-256 over :meth:`model_files`, each file's own): what an export records of its source."""
        import hashlib

        from alfia.atomic import sha256_file

        files = {p.relative_to(self.root).as_posix(): sha256_file(p) for p in self.model_files()}
        digest = hashlib.sha256()
        for name, sha in files.items():
            digest.update(f"{name}\0{sha}\n".encode())
        return digest.hexdigest(), files

    def require(self) -> "RunLayout":
        if not self.root.is_dir():
            raise AlfiaError(f"{self.root}: not a run directory (no such folder)")
        if not self.config.exists():
            raise AlfiaError(f"{self.root}: not a run directory (config.json is missing)")
        return self


def read_config(run_dir: str | os.PathLike) -> dict:
    """The run's config.json as a dict; {} when the run has none."""
    path = RunLayout.of(run_dir).config
    return read_json_object(path) if path.exists() else {}


def read_alfia_config(run_dir: str | os.PathLike) -> dict:
    """An ALFIA run's config.json, checked: its 'model', 'train' and 'data' sections are there."""
    layout = RunLayout.of(run_dir).require()
    doc = read_json_object(layout.config)
    try:
        kind = run_kind(doc, layout.config)
    except AlfiaError:  # a kind no member holds is not ALFIA either
        kind = None
    if kind is not RunKind.ALFIA:
        raise AlfiaError(f"{layout.config}: not an ALFIA run (model_type={doc.get('model_type')!r})")
    for key in ("model", "train", "data"):
        if key not in doc:
            raise AlfiaError(f"{layout.config}: not an ALFIA run config (no '{key}' section)")
        if not isinstance(doc[key], dict):
            raise AlfiaError(f"{layout.config}: '{key}' must be an object, got {type(doc[key]).__name__}")
    return doc


def write_predictions(path: str | os.PathLike, stay_id, split, label, prob, *, prob_uncalibrated=None) -> Path:
    """Write predictions in the one format the evaluation module reads.

    ``prob_uncalibrated``: the model's own sigmoid(logit) where ``prob`` went through a post-hoc
    calibrator, so that evaluation can report calibration before and after.
    """
    df = pd.DataFrame({ID_COLUMN: np.asarray(stay_id), SPLIT_COLUMN: np.asarray(split, dtype=object),
                       "label": np.asarray(label, dtype=np.int8), "prob": np.asarray(prob, dtype=float)})
    if prob_uncalibrated is not None:
        df[UNCALIBRATED_COLUMN] = np.asarray(prob_uncalibrated, dtype=float)
    for column in ("prob", UNCALIBRATED_COLUMN):
        values = df[column].to_numpy() if column in df else np.zeros(0)
        bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0) & (values <= 1)))
        if bad.size:
            raise AlfiaError(f"{path}: refusing to write '{column}' values that are not probabilities "
                             f"({bad.size} rows, the first {values[bad[0]]!r})")
    return write_atomic(path, lambda p: df.to_parquet(p, index=False))


def validate_predictions(pred: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """The predictions format, checked once where predictions enter (a file or a caller's frame):
    the columns, labels 0 or 1, probabilities in [0, 1], one row per stay and split. Returns a copy
    with ``label`` as int8 and ``prob`` as float; errors name the column and row at fault."""
    from alfia.cohorts.validate import check_labels

    where = f"{source}: " if source else ""
    if not isinstance(pred, pd.DataFrame):
        raise AlfiaError(f"{where}predictions must be a pandas DataFrame, got {type(pred).__name__}")
    missing = [c for c in PREDICTION_COLUMNS if c not in pred.columns]
    if missing:
        raise AlfiaError(f"{where}predictions lack column(s) {', '.join(missing)}")
    pred = pred.reset_index(drop=True)
    label = check_labels(pred, source or "predictions", column="label")
    prob = pd.to_numeric(pred["prob"], errors="coerce")
    bad = prob.isna() | ~np.isfinite(prob) | (prob < 0) | (prob > 1)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise AlfiaError(f"{where}column 'prob' must be a probability in [0, 1]; row {i} (stay_id "
                         f"{pred[ID_COLUMN].iloc[i]!r}) holds {pred['prob'].iloc[i]!r} ({int(bad.sum())} bad row(s))")
    dup = pred.duplicated([SPLIT_COLUMN, ID_COLUMN])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise AlfiaError(f"{where}stay_id {pred[ID_COLUMN].iloc[i]!r} appears more than once in split "
                         f"{pred[SPLIT_COLUMN].iloc[i]!r} (row {i})")
    out = pred.copy()
    out["label"] = label
    out["prob"] = prob.astype(float)
    return out


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """A predictions file, validated (:func:`validate_predictions`)."""
    path = Path(path)
    if not path.exists():
        raise AlfiaError(_no_predictions(path))
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise AlfiaError(f"{path}: not a readable Parquet file ({e})") from None
    return validate_predictions(df, str(path))


def _no_predictions(path: Path) -> str:
    """Why a run has no predictions file, and what to do: an interrupted run is resumed, not re-evaluated."""
    layout = RunLayout(path.parent)
    if path.name != layout.predictions.name or not layout.config.is_file():
        return f"{path}: no predictions file"
    from alfia.atomic import parked_directory

    if not (layout.checkpoint.is_dir() or parked_directory(layout.checkpoint) is not None):
        return (f"{layout.root}: the run did not finish (no {path.name}) and saved no checkpoint; delete the "
                f"folder and train again")
    try:
        doc = read_json_object(layout.config)
    except AlfiaError:
        doc = {}
    train = doc.get("train") if isinstance(doc.get("train"), dict) else {}
    try:
        kind = run_kind(doc, layout.config)
    except AlfiaError:
        kind = RunKind.OTHER
    if kind is RunKind.ALFIA:
        how = f"`alfia train --resume {layout.root}`"
    elif kind is RunKind.SERIES:
        how = f"`alfia series train {train.get('hourly') or 'HOURLY'} --out {layout.root} --resume`"
    else:
        how = "the command that started it, with --resume"
    return f"{layout.root}: the run was interrupted before it finished (no {path.name}); continue it with {how}"
