"""``alfia export RUN --out DIR [--quantize int8]``: a run as one ONNX graph, for CPU serving without torch weights.

    export_run("runs/alfia", "exports/alfia-int8", quantize="int8")
    run = load_run("exports/alfia-int8")         # predict / embed / serve / ALFIAClassifier read it like the run

What is exported is the model ``AlfiaModel.from_pretrained`` loads (whatever ``train_layers``, ``finetune``
and ``prune_layers`` the run used), with a LoRA adapter merged into the encoder's weights (peft's
``merge_and_unload``): encoder + pooler (ALF) + head (ACH) as one graph, inputs ``input_ids`` and
``attention_mask`` (int64, dynamic batch and sequence axes), outputs ``logits``, ``embedding`` and, for poolers
that have them, ``layer_weights``.

How:
- ``torch.onnx.export`` with the TorchScript tracer (``dynamo=False``): it traces transformers' encoders with
  dynamic axes as they are, and needs no onnxscript. The encoder is traced with eager attention (the same
  arithmetic as SDPA) so that onnxruntime's transformer optimizer recognises and fuses it (Attention,
  EmbedLayerNormalization, SkipLayerNormalization, BiasGelu); a fused graph is kept only if it still agrees
  with torch, else the plain one is.
- ``--quantize int8``: onnxruntime's dynamic quantisation (weights int8 once, activations uint8 per batch) of
  MatMul and the fused Attention. Embeddings, LayerNorms and the head's small Gemms stay fp32. The settings are
  chosen for x86 CPUs without VNNI (AVX2 only): ``weight_type=QInt8`` makes MatMulInteger run as U8S8,
  the kernel onnxruntime's MLAS optimises on x86 (VPMADDUBSW on AVX2, VPDPBUSD on AVX-512 VNNI); U8U8
  (QUInt8 weights) widens to 16 bits first and is slower there. VPMADDUBSW adds pairs of u8*s8 products in
  saturating 16-bit lanes (255 * 127 * 2 > 32767), so ``reduce_range=True`` keeps weights to 7 bits, where
  no pair can saturate; ``per_channel=True`` gives each output column its own scale to win back the bit.
- Every export checks itself: torch and the graph score the same tokenised texts (two batch shapes other than
  the traced one), and the largest differences go into export.json; fp32 must agree within ``FP32_TOLERANCE``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alfia.atomic import atomic_directory, read_json_object, sha256_file, write_json_atomic, write_text_atomic
from alfia.errors import AlfiaError
from alfia.inference.onnx_runtime import EXPORT_FORMAT, INPUT_NAMES, OnnxModel
from alfia.runs import RunLayout, read_alfia_config

QUANTIZATIONS = ("int8",)
OPSET = 17  # LayerNormalization is a plain ONNX op from 17 on
FP32_TOLERANCE = 1e-3  # largest |logit difference| an fp32 graph may show against torch on the check texts
# What the check runs through torch and the graph: clinical-looking texts of many lengths (the tokenizer makes
# them the run's own token ids). The longest is cut at the run's max_length, so every position is exercised.
_WORDS = ("patient admitted to the icu with sepsis heart rate 112 bpm systolic blood pressure 88 mmhg lactate "
          "4.1 mmol l creatinine 2.3 mg dl gcs 13 ventilated on the first day urine output low age 71 years "
          "female emergency admission history of hypertension and diabetes").split()
CHECK_LENGTHS = (400, 60, 25, 9, 3, 1)  # words per check text
TRACE_LENGTHS = (120, 14, 2)  # the traced batch: other shapes than the check's, with padding
COPIED_FILES = ("config.json", "backbone.json", "calibration.json", "thresholds.json", "predictions.parquet",
                "metrics.json")


def _texts(lengths) -> list[str]:
    return [" ".join(_WORDS[i % len(_WORDS)] for i in range(n)) for n in lengths]


def _batch(tokenizer, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and mask as ``predict`` builds them: tokenised unpadded, padded to the longest text."""
    from alfia.runtime import PadToLongest, pad_token_id_of, tokenize_texts

    data = tokenize_texts(texts, tokenizer, max_length)
    batch = PadToLongest(pad_token_id_of(tokenizer))([data[i] for i in range(len(data))])
    return batch["input_ids"], batch["attention_mask"]


class _Graph(torch.nn.Module):
    """The model with the outputs the graph returns, as a tuple (what the tracer needs)."""

    def __init__(self, model, with_layer_weights: bool) -> None:
        super().__init__()
        self.model = model
        self.with_layer_weights = with_layer_weights

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        out = self.model(input_ids, attention_mask)
        if self.with_layer_weights:
            return out.logits, out.embedding, out.layer_weights
        return out.logits, out.embedding


@contextlib.contextmanager
def _quiet():
    """The exporters' deprecation and tracer warnings, and onnxruntime's advice logged on the root logger."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _no_mha_fast_path():
    """nn.MultiheadAttention (the head) takes a fused kernel in inference that ONNX has no op for."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def _outputs(model, ids, mask) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        out = model(ids, mask)
    got = {"logits": out.logits.float().numpy(), "embedding": out.embedding.float().numpy()}
    if out.layer_weights is not None:
        got["layer_weights"] = out.layer_weights.float().numpy()
    return got


def _max_differences(reference: list[dict], graph: OnnxModel, batches) -> dict[str, float]:
    worst: dict[str, float] = {}
    for ref, (ids, mask) in zip(reference, batches):
        got = graph.run(ids.numpy(), mask.numpy())
        for name, value in ref.items():
            diff = float(np.max(np.abs(got[name].astype(np.float64) - value))) if value.size else 0.0
            if not np.isfinite(got[name]).all():
                diff = float("inf")
            worst[name] = max(worst.get(name, 0.0), diff)
    return worst


def _attention_heads(config) -> int:
    for name in ("num_attention_heads", "n_heads", "num_heads"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return 0  # the optimizer then reads it from the graph


def _optimize(source: Path, target: Path, encoder_config) -> str | None:
    """onnxruntime's transformer fusions of ``source`` into ``target``; None when they cannot be applied."""
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        optimized = optimize_model(str(source), model_type="bert", num_heads=_attention_heads(encoder_config),
                                   hidden_size=int(getattr(encoder_config, "hidden_size", 0) or 0), opt_level=1)
        optimized.save_model_to_file(str(target))
    except Exception:  # an encoder family whose graph the fusions do not know: keep the plain graph
        return None
    fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    return ", ".join(f"{k} x{v}" for k, v in fused.items()) or None


def _quantize(source: Path, target: Path, *, per_channel: bool, reduce_range: bool) -> dict:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    settings = {"method": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QInt8",
                "activations": "uint8, per batch (DynamicQuantizeLinear)", "per_channel": per_channel,
                "reduce_range": reduce_range, "op_types": ["MatMul", "Attention"]}
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=per_channel,
                     reduce_range=reduce_range, op_types_to_quantize=list(settings["op_types"]),
                     # the fused ops are com.microsoft ops ONNX's shape inference cannot type: they are fp32
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return settings


def run_summary(layout: RunLayout, config: dict) -> dict:
    """What a client is told about a run (``/metadata``): the model card's headline facts."""
    data, model = config.get("data", {}), config.get("model", {})
    backbone = read_json_object(layout.backbone) if layout.backbone.is_file() else {}
    summary: dict[str, Any] = {
        "model_name": config.get("model_name"), "alfia_version": config.get("alfia_version"),
        "recipe": config.get("recipe"), "backbone": backbone.get("name") or model.get("backbone"),
        "pooler": model.get("pooler"), "n_fusion_layers": model.get("n_fusion_layers"),
        "train_layers": model.get("train_layers"), "finetune": model.get("finetune"),
        "max_length": model.get("max_length"), "cohort_variant": data.get("variant"),
        "template": data.get("template"), "data_source": data.get("source"), "n_rows": data.get("n_rows"),
        "trained_at": config.get("created_at"),
        "best_val_auprc": (config.get("result") or {}).get("best_val_auprc"),
        "calibration": ((config.get("result") or {}).get("calibration") or {}).get("method"),
    }
    if layout.metrics.is_file():
        metrics = read_json_object(layout.metrics)
        values = {name: m.get("value") for name, m in (metrics.get("metrics") or {}).items()
                  if name in ("auroc", "auprc", "brier", "calibration_slope") and isinstance(m, dict)}
        summary["evaluation"] = {"split": metrics.get("split"), "n": metrics.get("n"), **values}
    return summary


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("alfia", "torch", "transformers", "peft", "onnx", "onnxruntime"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def check_export_target(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """The output guard of ``alfia export``: never the run itself or a folder around it; an existing folder
    only if empty, or, with ``overwrite``, if it is an earlier export (nothing else is ever replaced)."""
    from alfia.outputs import check_output_dir

    layout, out = RunLayout.of(run_dir), Path(out_dir)
    inputs = [layout.root, *layout.model_files()]
    check_output_dir(out, inputs=inputs, overwrite=overwrite)
    if out.resolve() in layout.root.resolve().parents:
        raise AlfiaError(f"{out}: --out holds the run {layout.root}; choose another --out")
    if overwrite and out.is_dir() and any(out.iterdir()) and not RunLayout.of(out).is_export:
        raise AlfiaError(f"{out}: not an export folder (no export.json), so --overwrite does not replace it; "
                         f"choose an empty or new --out")
    return out


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, quantize: str | None = None,
               overwrite: bool = False, num_threads: int | None = None, optimize: bool = True,
               per_channel: bool = True, reduce_range: bool = True) -> dict:
    """Export the run at ``run_dir`` to ``out_dir`` (written whole or not at all); returns its export.json."""
    from alfia.models import AlfiaModel
    from alfia.runtime import set_threads

    layout = RunLayout.of(run_dir).require()
    config = read_alfia_config(layout.root)
    if layout.is_export:
        raise AlfiaError(f"{layout.root}: already an export (export.json); export its source run "
                         f"({read_json_object(layout.export_record).get('source', {}).get('run_dir')})")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise AlfiaError(f"--quantize {quantize!r}: choose one of {', '.join(QUANTIZATIONS)} (or leave it out for fp32)")
    if not layout.fusion_head.is_file():
        raise AlfiaError(f"{layout.root}: no trained model in this run ({layout.fusion_head.name} is missing); "
                         f"finish training first (alfia train ... --resume {layout.root})")
    for required in (layout.predictions, layout.thresholds):
        if not required.is_file():
            raise AlfiaError(f"{required}: missing; an export carries the run's operating threshold and the val "
                             f"rows it was chosen on (finish the run first)")
    out = check_export_target(layout.root, out_dir, overwrite=overwrite)
    source_sha, source_files = layout.model_sha256()
    set_threads(num_threads)

    model = AlfiaModel.from_pretrained(layout.root).eval()
    tokenizer, max_length = model.tokenizer, int(model.max_length)
    checks = [_batch(tokenizer, _texts(CHECK_LENGTHS[:4]), max_length),
              _batch(tokenizer, _texts(CHECK_LENGTHS[2:]), max_length)]
    reference = [_outputs(model, ids, mask) for ids, mask in checks]  # the run as `alfia predict` scores it
    trace_ids, trace_mask = _batch(tokenizer, _texts(TRACE_LENGTHS), max_length)
    if bool(trace_mask.all()):
        raise AlfiaError(f"{layout.root}: max_length {max_length} is too short to trace a padded batch")

    merged = False
    if callable(getattr(model.encoder, "merge_and_unload", None)):  # a peft model: fold B A into W
        model.encoder = model.encoder.merge_and_unload()
        merged = True
    attention = getattr(model.encoder.config, "_attn_implementation", None)
    if callable(getattr(model.encoder, "set_attn_implementation", None)):
        try:
            model.encoder.set_attn_implementation("eager")
            attention = "eager"
        except (ValueError, ImportError):  # a family without it keeps what it has
            pass
    outputs = ["logits", "embedding"] + (["layer_weights"] if "layer_weights" in reference[0] else [])
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            **{name: {0: "batch"} for name in outputs}}

    with atomic_directory(out) as staging:
        plain, fused, int8 = staging / "plain.onnx", staging / "fused.onnx", staging / "int8.onnx"
        try:
            with _quiet(), _no_mha_fast_path(), torch.no_grad():
                torch.onnx.export(_Graph(model, "layer_weights" in outputs).eval(), (trace_ids, trace_mask),
                                  str(plain), input_names=list(INPUT_NAMES), output_names=outputs,
                                  dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        except Exception as e:  # the tracer's many error types: one line naming the run
            raise AlfiaError(f"{layout.root}: torch.onnx.export failed ({type(e).__name__}: "
                             f"{' '.join(str(e).split())[:300]})") from None
        encoder_config = model.encoder.config
        del model

        def check(path: Path) -> tuple[OnnxModel, dict[str, float]]:
            graph = OnnxModel(path, tokenizer, max_length, num_threads=num_threads)
            return graph, _max_differences(reference, graph, checks)

        chosen, fusions = plain, None
        _, fp32_diff = check(plain)
        if fp32_diff["logits"] > FP32_TOLERANCE:
            raise AlfiaError(f"{layout.root}: the exported graph's logits differ from torch's by up to "
                             f"{fp32_diff['logits']:.2g} (more than {FP32_TOLERANCE:g}); not exported")
        if optimize:
            with _quiet():
                fusions = _optimize(plain, fused, encoder_config)
            if fusions is not None:
                _, fused_diff = check(fused)
                if fused_diff["logits"] <= FP32_TOLERANCE:
                    chosen, fp32_diff = fused, fused_diff
                else:
                    fusions = None
        precision, quantization, diff = "fp32", None, fp32_diff
        if quantize == "int8":
            with _quiet():
                quantization = _quantize(chosen, int8, per_channel=per_channel, reduce_range=reduce_range)
            chosen, precision = int8, "int8"
            _, diff = check(int8)
        os.replace(chosen, staging / "model.onnx")
        for leftover in (plain, fused, int8):
            leftover.unlink(missing_ok=True)

        tokenizer.save_pretrained(str(staging / "tokenizer"))
        for name in COPIED_FILES:
            if (layout.root / name).is_file():
                shutil.copy2(layout.root / name, staging / name)
        from alfia.evaluation.card import card_markdown

        write_text_atomic(staging / "card.md", card_markdown(layout.root))
        record = {
            "format": EXPORT_FORMAT,
            "kind": "alfia-onnx-export",
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": {"run_dir": str(layout.root.resolve()), "sha256": source_sha, "files": source_files},
            "model": {
                "file": "model.onnx", "sha256": sha256_file(staging / "model.onnx"), "precision": precision,
                "quantization": quantization, "opset": OPSET,
                "exporter": f"torch.onnx.export (TorchScript tracer), torch {torch.__version__}",
                "lora_merged": merged, "attention": attention, "fusions": fusions,
                "inputs": {name: "int64 (batch, sequence)" for name in INPUT_NAMES},
                "outputs": {"logits": "float32 (batch,)", "embedding": "float32 (batch, hidden)",
                            **({"layer_weights": "float32 (batch, n_fusion_layers)"} if "layer_weights" in outputs
                               else {})},
                "max_length": max_length,
            },
            "check": {"texts": sum(len(ids) for ids, _ in checks),
                      "max_abs_difference_fp32": fp32_diff, "max_abs_difference": diff,
                      "against": "the run's torch model (AlfiaModel.from_pretrained), same token ids and padding"},
            "versions": _versions(),
            "summary": run_summary(layout, config),
        }
        write_json_atomic(staging / "export.json", record)
    return record
