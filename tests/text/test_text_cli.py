"""`alfia encode`: files, manifest, template choice, token report."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from alfia.cli import _register, app
from alfia.atomic import sha256_file
from alfia.cohorts.io import read_table, write_cohort
from alfia.errors import AlfiaError
from alfia.text import TEMPLATES, encode_cohort


@pytest.fixture
def cohort_file(tmp_path, random_cohorts):
    path = tmp_path / "cohort.parquet"
    write_cohort(random_cohorts["mimic"], path, source="synthetic", variant="mimic")
    return path


def _encode(*args):
    _register()
    return CliRunner().invoke(app, ["encode", *map(str, args)])


def test_encode_writes_text_table_and_manifest(tmp_path, cohort_file, random_cohorts):
    out = tmp_path / "text.parquet"
    res = _encode(cohort_file, "--out", out, "--missing", "state")
    assert res.exit_code == 0, res.output
    text, manifest = read_table(out)
    assert list(text.columns[:4]) == ["stay_id", "split", "hospital_expire_flag", "text"]
    assert manifest.kind == "text" and manifest.variant == "mimic" and manifest.source == "synthetic"
    assert manifest.extra["template"] == "mimic"
    assert manifest.extra["template_version"] == TEMPLATES["mimic"].version
    assert manifest.extra["missing"] == "state"
    assert manifest.extra["cohort_sha256"] == sha256_file(cohort_file)
    assert manifest.n_rows == len(random_cohorts["mimic"])
    expected = encode_cohort(random_cohorts["mimic"], "mimic", "state")["text"].tolist()
    assert text["text"].tolist() == expected
    assert json.loads(out.with_name("text.manifest.json").read_text())["content_sha256"]


def test_auto_follows_the_manifest_variant(tmp_path, random_cohorts):
    # An eICU cohort whose manifest says eicu is encoded with the eICU template.
    path = tmp_path / "e.parquet"
    write_cohort(random_cohorts["eicu"], path, source="synthetic", variant="eicu")
    res = _encode(path, "--out", tmp_path / "t.parquet")
    assert res.exit_code == 0, res.output
    assert read_table(tmp_path / "t.parquet")[1].extra["template"] == "eicu"


def test_explicit_template_other_than_the_cohort_variant_warns(tmp_path, random_cohorts):
    path = tmp_path / "e.parquet"
    df = random_cohorts["eicu"]
    df = df[df["gender"].isin(["Female", "Male"]) & df["smoker"].isin(["No", "Yes"])]
    write_cohort(df, path, source="synthetic", variant="eicu")
    res = _encode(path, "--out", tmp_path / "t.parquet", "--template", "mimic")
    assert res.exit_code == 0, res.output
    assert "the manifest says this is a eicu cohort, but the mimic template was asked for" in \
        res.output.replace("\n", " ")


def test_cohort_of_unknown_variant_fails_and_keeps_old_output(tmp_path, cohort_file):
    out = tmp_path / "text.parquet"
    assert _encode(cohort_file, "--out", out).exit_code == 0
    before = out.read_bytes()
    manifest = json.loads(cohort_file.with_name("cohort.manifest.json").read_text())
    manifest["variant"] = "hirid"
    cohort_file.with_name("cohort.manifest.json").write_text(json.dumps(manifest))
    res = _encode(cohort_file, "--out", out, "--overwrite")
    assert isinstance(res.exception, AlfiaError)
    assert "no text template for cohort variant 'hirid'" in str(res.exception)
    assert out.read_bytes() == before


def test_out_of_range_value_fails_without_writing(tmp_path, random_cohorts):
    df = random_cohorts["mimic"].copy()
    df.loc[3, "sofa_dynamic_max"] = 30
    path = tmp_path / "bad.parquet"
    write_cohort(df, path, source="synthetic", variant="mimic")
    res = _encode(path, "--out", tmp_path / "t.parquet")
    assert isinstance(res.exception, AlfiaError)
    assert f"stay_id={df.loc[3, 'stay_id']}" in str(res.exception)
    assert not (tmp_path / "t.parquet").exists()


@pytest.mark.integration
def test_report_tokens_with_the_default_tokenizer(tmp_path, cohort_file):
    res = _encode(cohort_file, "--out", tmp_path / "t.parquet", "--report-tokens", "default",
                  "--max-length", "64")
    assert res.exit_code == 0, res.output
    assert "tokens (default): p50 " in res.output and ", p95 " in res.output and ", max " in res.output
    n = len(pd.read_parquet(tmp_path / "t.parquet"))
    assert f"of {n} texts" in res.output.replace(",", "") and "would be truncated" in res.output


def test_report_tokens_from_a_local_tokenizer_directory(tmp_path, cohort_file):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    fast.save_pretrained(tmp_path / "tok")
    res = _encode(cohort_file, "--out", tmp_path / "t.parquet", "--report-tokens", tmp_path / "tok",
                  "--max-length", "100000")
    assert res.exit_code == 0, res.output
    assert "all texts fit in --max-length 100000" in res.output
