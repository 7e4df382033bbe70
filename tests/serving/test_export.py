"""`alfia export`: one ONNX graph that agrees with torch, an export folder every predicting command reads like
its run, and the output guard."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cli_process import run_alfia

from alfia.errors import AlfiaError
from alfia.inference import embed, load_run, predict, read_inference_input
from alfia.inference.export import export_run
from alfia.inference.onnx_runtime import OnnxModel
from alfia.runs import RunLayout

RUNS = ("lora", "default")  # the runs of tests/serving/conftest.py


def _batches(tokenizer, texts, max_length, sizes=(1, 7, 16, 32)):
    from alfia.runtime import PadToLongest, pad_token_id_of, tokenize_texts

    data = tokenize_texts(texts, tokenizer, max_length)
    collate, start = PadToLongest(pad_token_id_of(tokenizer)), 0
    for size in sizes:  # several batch shapes, none of them the traced one
        rows = [data[i] for i in range(start, min(start + size, len(data)))]
        start += size
        if rows:
            yield collate(rows)


def _compare(served, name, precision):
    import torch

    from alfia.models import AlfiaModel

    model = AlfiaModel.from_pretrained(served.runs[name]).eval()
    layout = RunLayout.of(served.exports[name, precision])
    graph = OnnxModel(layout.onnx_model, model.tokenizer, model.max_length, num_threads=1)
    texts = pd.read_parquet(served.text_path)["text"].tolist()
    worst = {}
    for batch in _batches(model.tokenizer, texts, model.max_length):
        with torch.inference_mode():
            ref = model(batch["input_ids"], batch["attention_mask"])
        got = graph.run(batch["input_ids"].numpy(), batch["attention_mask"].numpy())
        for key, value in (("logits", ref.logits), ("embedding", ref.embedding), ("layer_weights", ref.layer_weights)):
            worst[key] = max(worst.get(key, 0.0), float(np.abs(got[key] - value.numpy()).max()))
    return worst


@pytest.mark.parametrize("name", RUNS)
def test_fp32_graph_matches_torch_within_1e4(served, name):
    worst = _compare(served, name, "fp32")
    assert worst["logits"] <= 1e-4 and worst["embedding"] <= 1e-4 and worst["layer_weights"] <= 1e-4, worst


@pytest.mark.parametrize("name", RUNS)
def test_int8_graph_runs_and_stays_close(served, name):
    worst = _compare(served, name, "int8")
    assert 0 < worst["logits"] <= 0.1, worst  # quantised: not equal, but close on this tiny random BERT
    record = json.loads((served.exports[name, "int8"] / "export.json").read_text())
    assert record["model"]["precision"] == "int8"
    q = record["model"]["quantization"]
    assert (q["weight_type"], q["reduce_range"], q["per_channel"]) == ("QInt8", True, True)
    assert (served.exports[name, "int8"] / "model.onnx").stat().st_size < \
        (served.exports[name, "fp32"] / "model.onnx").stat().st_size


@pytest.mark.parametrize("name", RUNS)
def test_predict_and_embed_on_the_export_equal_the_run(served, name):
    run, export = load_run(served.runs[name], num_threads=1), load_run(served.exports[name, "fp32"], num_threads=1)
    assert export.backend == "onnxruntime" and run.backend == "torch"
    assert export.threshold == run.threshold and export.template == run.template
    assert export.calibrator.to_dict() == run.calibrator.to_dict()
    for path in (served.cohort_path, served.text_path):  # cohort rows (the run's template) and texts
        a, _ = predict(run, read_inference_input(path, run), batch_size=16)
        b, perf = predict(export, read_inference_input(path, export), batch_size=16)
        assert list(a.columns) == list(b.columns) and (a["stay_id"] == b["stay_id"]).all()
        np.testing.assert_allclose(b["prob"], a["prob"], rtol=0, atol=1e-4)
        assert "onnxruntime fp32" in perf.device
    inputs = read_inference_input(served.text_path, run)
    ea, _ = embed(run, inputs)
    eb, _ = embed(export, inputs)
    assert list(ea.columns) == list(eb.columns)
    numeric = [c for c in ea.columns if c.startswith(("alf_", "layer_weight_"))]
    np.testing.assert_allclose(eb[numeric].to_numpy(), ea[numeric].to_numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", RUNS)
def test_export_json_records_the_source_and_what_was_exported(served, name):
    layout, source = RunLayout.of(served.exports[name, "fp32"]), RunLayout.of(served.runs[name])
    record = json.loads(layout.export_record.read_text())
    sha, files = source.model_sha256()
    assert record["source"]["sha256"] == sha and record["source"]["files"] == files
    assert ("adapter/adapter_model.safetensors" in files) == (name == "lora")
    assert ("encoder.safetensors" in files) == (name == "default")
    model = record["model"]
    assert model["lora_merged"] == (name == "lora") and model["precision"] == "fp32" and model["quantization"] is None
    assert set(model["outputs"]) == {"logits", "embedding", "layer_weights"} and model["max_length"] == 48
    assert record["check"]["max_abs_difference"]["logits"] < 1e-4
    assert record["summary"]["cohort_variant"] == "mimic" and record["summary"]["trained_at"]
    config = json.loads(layout.config.read_text())["model"]
    assert (config["train_layers"], config["finetune"]) == (("all", "lora") if name == "lora" else (2, "full"))
    names = {p.name for p in layout.root.iterdir()}
    assert {"model.onnx", "export.json", "tokenizer", "card.md", "config.json", "calibration.json",
            "thresholds.json", "predictions.parquet"} <= names
    assert not names & {"fusion_head.safetensors", "encoder.safetensors", "adapter", "checkpoint"}  # no torch weights
    assert (layout.root / "calibration.json").read_bytes() == (source.root / "calibration.json").read_bytes()


def test_an_export_needs_nothing_but_its_folder(served, tmp_path, monkeypatch):
    import alfia.models.backbone

    moved = tmp_path / "elsewhere"
    shutil.copytree(served.exports["lora", "int8"], moved)

    def no_backbone(*args, **kwargs):
        raise AssertionError("an export must not load the backbone")

    monkeypatch.setattr(alfia.models.backbone, "load_backbone", no_backbone)
    export = load_run(moved, num_threads=1)
    preds, _ = predict(export, read_inference_input(served.text_path, export))
    assert len(preds) == 80 and preds["prob"].between(0, 1).all()


def test_classifier_from_pretrained_reads_an_export(served):
    from alfia.api import ALFIAClassifier

    texts = pd.read_parquet(served.text_path)["text"].tolist()[:20]
    from_run = ALFIAClassifier.from_pretrained(served.runs["default"], num_threads=1)
    from_export = ALFIAClassifier.from_pretrained(served.exports["default", "fp32"], num_threads=1)
    np.testing.assert_allclose(from_export.predict_proba(texts), from_run.predict_proba(texts), rtol=0, atol=1e-4)
    assert (from_export.predict(texts) == from_run.predict(texts)).all()


def test_external_cohort_scored_from_an_export(served, tmp_path, capsys):
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic

    site = tmp_path / "site.parquet"
    write_cohort(generate_synthetic("eicu", 30, seed=5), site, source="synthetic", variant="eicu")
    probs = []
    for folder in (served.runs["lora"], served.exports["lora", "fp32"]):
        copy = tmp_path / folder.name  # `alfia evaluate` writes metrics.json and external/ into the folder
        shutil.copytree(folder, copy)
        code, out, err = run_alfia(["evaluate", copy, "--n-boot", "10", "--external", site, "--device", "cpu"], capsys)
        assert code == 0, err
        probs.append(pd.read_parquet(copy / "external" / "site" / "predictions.parquet")["prob"].to_numpy())
    np.testing.assert_allclose(probs[1], probs[0], rtol=0, atol=1e-4)


def test_alfia_export_and_predict_on_the_command_line(served, tmp_path, capsys):
    out = tmp_path / "export"
    code, _, err = run_alfia(["export", served.runs["default"], "--out", out, "--quantize", "int8", "--threads", "1"],
                             capsys)
    assert code == 0, err
    assert "int8" in err and "alfia serve" in err
    code, _, err = run_alfia(["predict", out, "--input", served.cohort_path, "--out", tmp_path / "p.parquet",
                              "--threads", "1"], capsys)
    assert code == 0, err
    assert "onnxruntime int8" in err and len(pd.read_parquet(tmp_path / "p.parquet")) == 80


# -------------------------------------------------------------------- bad inputs
def test_not_a_run_directory(served, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlfiaError, match="config.json is missing"):
        export_run(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(AlfiaError, match="no such folder"):
        export_run(tmp_path / "missing", tmp_path / "out")
    code, _, err = run_alfia(["export", tmp_path / "empty", "--out", tmp_path / "out"], capsys)
    assert code == 2 and "not a run directory" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    baselines = tmp_path / "baseline"
    baselines.mkdir()
    (baselines / "config.json").write_text(json.dumps({"model_type": "lightgbm"}))
    with pytest.raises(AlfiaError, match="not an ALFIA run"):
        export_run(baselines, tmp_path / "out")


def test_existing_out_is_refused_without_overwrite(served, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_alfia(["export", served.runs["lora"], "--out", out], capsys)
    assert code == 2 and "not empty" in err and "--overwrite" in err
    with pytest.raises(AlfiaError, match="not an export folder"):  # --overwrite replaces an earlier export only
        export_run(served.runs["lora"], out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"

    earlier = tmp_path / "earlier"
    shutil.copytree(served.exports["lora", "fp32"], earlier)
    with pytest.raises(AlfiaError, match="not empty"):
        export_run(served.runs["lora"], earlier)
    record = export_run(served.runs["lora"], earlier, quantize="int8", overwrite=True, num_threads=1)
    assert record["model"]["precision"] == "int8"
    assert json.loads((earlier / "export.json").read_text())["model"]["precision"] == "int8"


def test_the_run_itself_is_never_the_output(served, tmp_path):
    with pytest.raises(AlfiaError, match="overwrite an input"):
        export_run(served.runs["lora"], served.runs["lora"], overwrite=True)
    with pytest.raises(AlfiaError, match="holds the run"):
        export_run(served.runs["lora"], served.runs["lora"].parent, overwrite=True)
    with pytest.raises(AlfiaError, match="already an export"):
        export_run(served.exports["lora", "fp32"], tmp_path / "again")
    with pytest.raises(AlfiaError, match="--quantize 'int4'"):
        export_run(served.runs["lora"], tmp_path / "q", quantize="int4")
    assert not (tmp_path / "again").exists() and not (tmp_path / "q").exists()


def test_a_changed_graph_or_a_gpu_request_is_refused(served, tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(served.exports["default", "fp32"], copy)
    with pytest.raises(AlfiaError, match="onnxruntime, not on 'cuda'"):
        load_run(copy, device="cuda")
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(AlfiaError, match="SHA-256 differs"):
        load_run(copy)


def test_cross_fit_needs_the_source_run(served):
    from alfia.api.crossfit import cross_fit_embeddings

    with pytest.raises(AlfiaError, match="an export folder; --cross-fit"):
        cross_fit_embeddings(served.exports["lora", "fp32"], served.text_path, 2)
