"""Preprocessing (fitted on train only, absent variables masked, units converted) and the five models
(shapes, any number of hours, config round trips, TCN causality)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alfia.errors import AlfiaError
from alfia.series.models import MODELS, build_model, config_from_dict, config_to_dict, default_config
from alfia.series.preprocess import HourlyPreprocessor, forward_fill
from alfia.series.variables import SeriesVariable, align_variables
from series_testkit import make_arrays


def test_forward_fill_looks_back_only():
    v = np.array([[[np.nan], [1.0], [np.nan], [3.0], [np.nan]]])
    out = forward_fill(v)[0, :, 0]
    assert np.isnan(out[0]) and out[1:].tolist() == [1, 1, 3, 3]


def test_fitted_on_train_only(arrays):
    pre = HourlyPreprocessor().fit(arrays, arrays.rows_of("train"))
    changed = arrays.subset(slice(None))
    changed.values = arrays.values.copy()
    changed.values[arrays.rows_of("test")] += 1000.0  # test stays must not move the statistics
    changed.values[arrays.rows_of("val")] *= 7.0
    other = HourlyPreprocessor().fit(changed, changed.rows_of("train"))
    np.testing.assert_array_equal(pre.median_, other.median_)
    np.testing.assert_array_equal(pre.mean_, other.mean_)
    train_hr = arrays.values[arrays.rows_of("train"), :, 0]
    assert pre.median_[0] == pytest.approx(np.median(train_hr))


def test_features_masks_and_round_trip(arrays):
    pre = HourlyPreprocessor().fit(arrays, arrays.rows_of("train"))
    x = pre.transform(arrays)
    v = len(arrays.variables)
    assert x.shape == (96, 6, 3 * v) and x.dtype == np.float32 and np.isfinite(x).all()
    np.testing.assert_array_equal(x[:, :, v:2 * v], ~np.isnan(arrays.values))
    back = HourlyPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(back.transform(arrays), x)


def test_absent_variable_is_masked_not_zero(arrays):
    pre = HourlyPreprocessor().fit(arrays, arrays.rows_of("train"))
    target = make_arrays(drop="lactate", seed=1)
    x, alignment = pre.transform(target), align_variables(pre.variables, target.variables)
    assert alignment.absent == {"lactate": "not in the table"}
    j, v = 1, 3  # lactate's column; value, mask and time-since-last blocks
    assert (x[:, :, v + j] == 0).all()  # never measured
    expected = (pre.median_[j] - pre.mean_[j]) / pre.scale_[j]  # the train median, not a raw zero
    np.testing.assert_allclose(x[:, :, j], expected, rtol=1e-6)
    assert expected != 0
    np.testing.assert_allclose(x[:, :, 2 * v + j], np.broadcast_to(np.arange(1, 7) / 6, (96, 6)), rtol=1e-6)


def test_units_convert_or_mask():
    model = [SeriesVariable("fio2", "%", "mean", ""), SeriesVariable("magnesium", "mmol/L", "mean", ""),
             SeriesVariable("sodium", "mmol/L", "mean", "")]
    table = [SeriesVariable("fio2", "fraction", "mean", ""), SeriesVariable("magnesium", "mg/dL", "mean", ""),
             SeriesVariable("sodium", "mEq/L", "mean", "")]
    a = align_variables(model, table)
    assert a.matched == {"fio2": 100.0, "sodium": 1.0}
    assert "mg/dL" in a.absent["magnesium"]
    with pytest.raises(AlfiaError, match="no variable of the model"):
        align_variables(model[:1], [SeriesVariable("hr", "bpm", "mean", "")])


@pytest.mark.parametrize("name", list(MODELS))
def test_models_take_any_number_of_hours(name):
    torch.manual_seed(0)
    config = default_config(name, 9)
    name2, config2 = config_from_dict(json.loads(json.dumps(config_to_dict(name, config))))
    assert name2 == name and config2 == config
    model = build_model(name, config).eval()
    for hours in (1, 5, 24):
        out = model(torch.randn(3, hours, 9))
        assert out.shape == (3,) and torch.isfinite(out).all()


def test_tcn_is_causal():
    torch.manual_seed(0)
    model = build_model("tcn", default_config("tcn", 4)).eval()
    x = torch.randn(2, 10, 4)
    y = x.clone()
    y[:, 7:] += 5.0
    h = model.blocks(x.transpose(1, 2))
    g = model.blocks(y.transpose(1, 2))
    torch.testing.assert_close(h[:, :, :7], g[:, :, :7])
    assert not torch.allclose(h[:, :, 7:], g[:, :, 7:])


def test_bad_settings_are_named():
    with pytest.raises(AlfiaError, match="unknown setting"):
        default_config("gru", 4, hidden=3)
    with pytest.raises(AlfiaError, match="unknown series model"):
        default_config("lstm-xl", 4)
    with pytest.raises(AlfiaError, match="unknown key"):
        config_from_dict({"model": "gru", "input_size": 3, "colour": 1})
