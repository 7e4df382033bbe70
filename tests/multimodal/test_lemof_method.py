"""LeMoF's parts: the level cache, matching stays by stay_id, a planted middle-layer signal that LeMoF finds and
single-level fusion misses, the series levels, and the fusion's save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from alfia.errors import AlfiaError
from alfia.multimodal.fit import FitConfig
from alfia.multimodal.levels import ModalityLevels, load_cache, match_stays, save_cache
from alfia.multimodal.model import LemofConfig
from alfia.multimodal.fusion import fusion_logits, load_fusion, save_fusion, train_fusion
from lemof_testkit import planted_levels

FAST = FitConfig(epochs=25, patience=6, threads=1)


# --- the level cache ---------------------------------------------------------------------------------------

def test_level_cache_round_trips_in_stay_order(tmp_path):
    stays, levels = planted_levels(n=40)
    save_cache(tmp_path / "levels", stays, levels)
    back_stays, back = load_cache(tmp_path / "levels")
    assert back_stays.stay_id.tolist() == stays.stay_id.tolist()
    assert back_stays.split.tolist() == stays.split.tolist() and back_stays.label.tolist() == stays.label.tolist()
    for m, lv in levels.items():
        assert back[m].names == lv.names and back[m].widths == lv.widths
        assert np.array_equal(back[m].own_logit, lv.own_logit.astype(np.float32))
        for a, b in zip(back[m].levels, lv.levels):
            assert b.dtype == np.float32 and np.allclose(a, b, atol=2e-3)  # stored as float16
    from safetensors import safe_open

    with safe_open(str(tmp_path / "levels" / "series.safetensors"), framework="numpy") as f:
        assert f.get_tensor("level_000").dtype == np.float16 and f.get_tensor("stay_id").dtype == np.int64


def test_levels_are_taken_by_stay_id_and_a_missing_stay_is_named(tmp_path):
    _, levels = planted_levels(n=10)
    lv = levels["text"]
    picked = lv.take([5009, 5000])
    assert picked.stay_id.tolist() == [5009, 5000] and np.array_equal(picked.levels[2][0], lv.levels[2][9])
    with pytest.raises(AlfiaError, match="no text levels for stay_id 4242"):
        lv.take([5000, 4242])
    (tmp_path / "junk.safetensors").write_bytes(b"not a cache")
    with pytest.raises(AlfiaError, match="junk.safetensors: not a readable level cache"):
        ModalityLevels.load(tmp_path / "junk.safetensors")


def test_match_stays_names_the_stay_and_the_file():
    match_stays(np.array([1, 2, 3]), "cohort.parquet", {"text": (np.array([3, 2, 1]), "text.parquet")})
    with pytest.raises(AlfiaError, match=r"hourly.parquet: stay_id 2 of cohort.parquet is missing from the series"):
        match_stays(np.array([1, 2, 3]), "cohort.parquet", {"series": (np.array([1, 3]), "hourly.parquet")})
    with pytest.raises(AlfiaError, match=r"text.parquet: stay_id 9 of the text input is not in cohort.parquet"):
        match_stays(np.array([1, 2]), "cohort.parquet", {"text": (np.array([1, 2, 9]), "text.parquet")})


# --- the method --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted():
    stays, levels = planted_levels(n=700)
    lemof, _ = train_fusion(stays, levels, LemofConfig(d_model=32), FAST)
    single_levels = {m: lv.last_only() for m, lv in levels.items()}
    single, _ = train_fusion(stays, single_levels, LemofConfig(d_model=32), FAST)
    return stays, levels, lemof, single, single_levels


def test_lemof_finds_a_signal_that_lives_in_one_middle_layer_and_single_level_fusion_misses_it(planted):
    stays, levels, lemof, single, single_levels = planted
    test = stays.rows_of("test")
    auroc = roc_auc_score(stays.label[test], fusion_logits(lemof, levels, test))
    auroc_single = roc_auc_score(stays.label[test], fusion_logits(single, single_levels, test))
    assert auroc > 0.8 and auroc_single < 0.65, (auroc, auroc_single)
    weights = lemof.level_weights()
    assert int(torch.argmax(weights["series"])) == 1  # the planted layer carries the series weight
    assert float(weights["series"][1].detach()) > 1.5 / 4  # well above uniform


def test_fusion_weights_round_trip(planted, tmp_path):
    stays, levels, lemof, _, _ = planted
    save_fusion(lemof, tmp_path / "model.safetensors")
    back = load_fusion("lemof", lemof.config, tmp_path / "model.safetensors")
    rows = stays.rows_of("val")
    assert np.allclose(fusion_logits(back, levels, rows), fusion_logits(lemof, levels, rows), atol=1e-6)
    other = LemofConfig(d_model=16).with_levels(levels)
    with pytest.raises(AlfiaError, match="does not hold this fusion's weights"):
        load_fusion("lemof", other, tmp_path / "model.safetensors")


def test_top_k_keeps_k_levels_per_modality_in_the_attention(planted):
    stays, levels, _, _, _ = planted
    model, _ = train_fusion(stays, levels, LemofConfig(d_model=16, top_k=1), FitConfig(epochs=2, threads=1))
    bias = model._attention_bias(model.level_weights())
    assert bias.shape == (3, 12) and torch.isfinite(bias).sum(dim=1).tolist() == [3, 3, 3]


def test_every_series_model_gives_levels_whose_head_is_its_own_logit():
    from alfia.multimodal.encoders import series_model_levels
    from alfia.series.models import MODELS, build_model, default_config

    tiny = {"bilstm-transformer": {"hidden_size": 8, "d_model": 8, "n_heads": 2, "dim_feedforward": 16,
                                   "lstm_layers": 2, "n_layers": 2},
            "bilstm": {"hidden_size": 8, "num_layers": 2}, "transformer": {"d_model": 8, "n_heads": 2,
                                                                         "dim_feedforward": 16, "n_layers": 2},
            "gru": {"hidden_size": 8, "num_layers": 2}, "tcn": {"channels": 8}}
    x = torch.randn(5, 6, 9)
    for name in MODELS:
        torch.manual_seed(0)
        model = build_model(name, default_config(name, 9, **tiny[name])).eval()
        with torch.no_grad():
            levels, logit = series_model_levels(model, x)
            assert torch.allclose(logit, model(x), atol=1e-5), name
        assert levels[-1][0] == "head" and all(v.shape[0] == 5 for _, v in levels)
    assert [n for n, _ in series_model_levels(build_model("bilstm-transformer", default_config(
        "bilstm-transformer", 9, **tiny["bilstm-transformer"])).eval(), x)[0]] == [
        "bilstm_1", "bilstm_2", "transformer_input", "transformer_1", "transformer_2", "head"]
