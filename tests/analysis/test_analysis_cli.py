"""`alfia analyze` and `alfia robustness` end to end on a tiny random BERT run, as a user runs them; the model card
picks their outputs up; the zoo adapter judges a tabular model on the same edited rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alfia.analysis.perturb import PERTURBATIONS
from alfia.analysis.robustness import run_robustness
from alfia.analysis.scorers import Scores


from cli_process import run_alfia

from .conftest import invoke as _invoke


def test_analyze_compares_alf_with_the_poolings_and_the_tabular_matrix(analysed, analysis_data):
    doc = json.loads((analysed / "analysis.json").read_text())
    embeddings = pd.read_csv(analysed / "embeddings.csv")
    assert list(embeddings["representation"]) == ["tabular", "CLS", "mean", "max", "ALF"]
    assert (embeddings.loc[embeddings["representation"] != "tabular", "dims"] == 32).all()  # the tiny BERT's width
    for metric in ("auprc", "auroc"):
        values = embeddings[[f"test_{metric}_ci_low", f"test_{metric}", f"test_{metric}_ci_high"]].to_numpy()
        assert ((values >= 0) & (values <= 1)).all() and (values[:, 0] <= values[:, 1]).all()
        assert (values[:, 1] <= values[:, 2]).all()
    assert (embeddings[["centroid_distance", "mean_min_neighbour_distance", "separation"]] > 0).all().all()
    layers = pd.read_csv(analysed / "layer_weights.csv")
    assert list(layers["layer"]) == [1, 2] and list(layers["from_top"]) == ["L-1", "L"]  # N_f = 2 of 2 layers
    assert ((layers["mean_all"] > 0) & (layers["mean_all"] < 1)).all()  # sigmoid gates
    # the per-outcome means average back to the overall mean
    y = pd.read_parquet(analysis_data.text_path)["hospital_expire_flag"]
    share = y.mean()
    assert np.allclose(layers["mean_all"], (1 - share) * layers["mean_survivors"] + share * layers["mean_deaths"],
                       atol=1e-5)
    umap = pd.read_csv(analysed / "umap.csv")
    assert set(umap["representation"]) == set(embeddings["representation"])
    assert len(umap) == 5 * doc["n_geometry_stays"] and doc["n_geometry_stays"] == doc["splits"]["test"]
    page = (analysed / "analysis.html").read_text()
    assert page.count("<img") == len(doc["figures"]) == 5 and "Centroid distance (HIB)" in page
    for name in ("layer_weights", "mlp", "measures", "umap_0"):
        assert (analysed / "figures" / f"{name}.png").stat().st_size > 1000
    assert doc["higher_is_better"]["intra_death_distance"] is False


def test_analyze_refuses_an_existing_output_without_overwrite(analysed, analysis_data, capsys):
    code, _, err = run_alfia(["analyze", analysis_data.run, "--input", analysis_data.text_path], capsys)
    assert code == 2 and "not empty" in err and "--overwrite" in err


def test_analyze_names_what_the_input_lacks(analysis_data, tmp_path, capsys):
    df = pd.read_parquet(analysis_data.text_path).drop(columns=["split"])
    df.to_parquet(tmp_path / "nosplit.parquet")
    code, _, err = run_alfia(["analyze", analysis_data.run, "--input", tmp_path / "nosplit.parquet",
                              "--out", tmp_path / "a"], capsys)
    assert code == 2 and "no 'split' column" in err and not (tmp_path / "a").exists()


def test_robustness_measures_every_perturbation(robust, analysis_data):
    table = pd.read_csv(robust / "robustness.csv")
    assert list(table["perturbation"]) == [p.name for p in PERTURBATIONS]
    test_stays = int((pd.read_parquet(analysis_data.text_path)["split"] == "test").sum())
    assert (table["n_stays"] == test_stays).all() and (table["n_applied"] > 0).all()
    for column in ("flip_rate", "latent_flip_rate", "mean_abs_delta_prob", "p95_abs_delta_prob"):
        assert table[column].between(0, 1).all(), column
    # A mean above the 95th percentile needs a few large changes among near-zero ones; beyond float noise
    # (a perturbation that changes nothing) that is not what these tiny edits do.
    assert (table["p95_abs_delta_prob"] >= table["mean_abs_delta_prob"] - 1e-6).all()
    directional = table[table["axis"] == "directional"]
    assert directional["share_expected_direction"].between(0, 1).all() and len(directional) == 3
    assert table.loc[table["axis"] != "directional", "share_expected_direction"].isna().all()
    assert table["auroc_change"].notna().all()
    stays = pd.read_parquet(robust / "per_stay.parquet")
    # flip rate and |Δp| are those of the per-stay probabilities, at the run's threshold
    threshold = json.loads((analysis_data.run / "thresholds.json").read_text())["operating_points"]["f1"]["threshold"]
    for _, row in table.iterrows():
        sub = stays[stays["perturbation"] == row["perturbation"]]
        assert len(sub) == row["n_applied"]
        flips = (sub["prob_original"] >= threshold) != (sub["prob_perturbed"] >= threshold)
        assert flips.mean() == pytest.approx(row["flip_rate"])
        assert (sub["prob_perturbed"] - sub["prob_original"]).abs().mean() == pytest.approx(row["mean_abs_delta_prob"])
    examples = pd.read_csv(robust / "examples.csv")
    assert len(examples) == len(PERTURBATIONS)
    negation = examples[examples["perturbation"] == "negation"].iloc[0]
    assert "mechanical ventilation" in negation["perturbed_text"]
    assert negation["perturbed_text"] != negation["original_text"]
    page = (robust / "robustness.html").read_text()
    assert page.count("<img") == 3 and "Decisions flipped" in page
    doc = json.loads((robust / "robustness.json").read_text())
    assert {t["target"].split(" ")[0] for t in doc["targets"]} == {"numeric", "gcs_to_3", "lactate_x3",
                                                                   "urine_output_div4"}


def test_the_unperturbed_scores_are_alfia_predicts(analysis_data):
    """What robustness compares against is exactly what `alfia predict` gives for the same stays."""
    from alfia.analysis.perturb import render_rows
    from alfia.analysis.scorers import load_scorer
    from alfia.inference import load_run, predict, read_inference_input

    run = load_run(analysis_data.run)
    rows = pd.read_parquet(analysis_data.text_path)
    expected = predict(run, read_inference_input(analysis_data.text_path, run))[0]["prob"].to_numpy()
    scorer = load_scorer(analysis_data.run)
    texts = render_rows(rows, "physionet2012_compact")
    assert texts == rows["text"].tolist()
    got = scorer.score(rows, texts)
    assert np.allclose(got.prob, expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(got.embedding, axis=1), 1.0, atol=1e-5)


class _LactateModel:
    """A tabular 'zoo run' whose risk is the lactate alone: the adapter's interface, with a known answer."""

    kind, variant, threshold, name = "tabular", "physionet2012_compact", 0.5, "lactate-only"
    run_dir = None

    def score(self, rows, texts):
        lactate = rows["lactate_max"].fillna(rows["lactate_min"]).fillna(1.0).to_numpy(dtype=float)
        return Scores(1.0 / (1.0 + np.exp(-(lactate - 4.0))))


def test_a_tabular_model_is_judged_on_the_same_edited_rows(analysis_data):
    from alfia.analysis.scorers import load_scorer

    rows = analysis_data.cohort[analysis_data.cohort["split"] == "test"].reset_index(drop=True)
    table, stays, examples, _ = run_robustness([load_scorer(analysis_data.run), _LactateModel()], rows,
                                               "physionet2012_compact", perturbations=PERTURBATIONS, n_boot=20)
    lact = table[table["model"] == "lactate-only"].set_index("perturbation")
    text = table[table["model"] != "lactate-only"].set_index("perturbation")
    assert lact.loc["lactate_x3", "share_expected_direction"] == 1.0  # x3 always raises its risk
    assert lact.loc["gcs_to_3", "share_expected_direction"] == 0.0 and lact.loc["gcs_to_3", "mean_abs_delta_prob"] == 0
    for name in ("synonym", "shuffle"):  # edits of the text: not applicable to a tabular model
        assert lact.loc[name, "n_applied"] == 0 and "tabular model" in lact.loc[name, "note"]
        assert text.loc[name, "n_applied"] > 0
    for name in ("mask", "negation", "numeric_+5%", "lactate_x3"):  # equal edits: the same stays for both
        assert lact.loc[name, "n_applied"] == text.loc[name, "n_applied"]
        a = stays[(stays["perturbation"] == name) & (stays["model"] == "lactate-only")]
        b = stays[(stays["perturbation"] == name) & (stays["model"] != "lactate-only")]
        assert a["stay_id"].tolist() == b["stay_id"].tolist() and a["change"].tolist() == b["change"].tolist()
    assert lact["latent_flip_rate"].isna().all()  # no embeddings


def test_robustness_on_a_zoo_run(analysis_data, tmp_path):
    """`alfia robustness ZOO_RUN --input COHORT` needs the zoo's saved models (alfia.baselines.saved)."""
    result = _invoke("baselines", analysis_data.cohort_path, "--out", tmp_path / "zoo", "--models", "LightGBM",
                     "--profile", "fast", "--n-boot", 20, "--jobs", 1)
    assert result.exit_code == 0, result.output
    result = _invoke("robustness", tmp_path / "zoo" / "LightGBM", "--input", analysis_data.cohort_path,
                     "--out", tmp_path / "rob", "--n-boot", 20)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "rob" / "robustness.csv").set_index("perturbation")
    assert (table["kind"] == "tabular").all()
    assert table.loc[table["level"] == "row", "flip_rate"].between(0, 1).all()
    # edits of the text only (synonyms, sentence order) do not apply to a model that reads the row
    assert (table.loc[["synonym", "shuffle"], "n_applied"] == 0).all()
    assert table.loc["lactate_x3", "n_applied"] > 0


def test_robustness_of_a_zoo_run_without_its_saved_model_is_one_clear_error(analysis_data, tmp_path, capsys):
    run = tmp_path / "zoo" / "LightGBM"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model_name": "LightGBM", "model_family": "baseline"}))
    code, _, err = run_alfia(["robustness", run, "--input", analysis_data.cohort_path, "--out", tmp_path / "rob"],
                             capsys)
    assert code == 2 and "LightGBM" in err and "model" in err and not (tmp_path / "rob").exists()


def test_the_card_reports_robustness_and_the_layer_weights(analysed, robust, analysis_data, tmp_path):
    result = _invoke("card", analysis_data.run, "--out", tmp_path / "card.md")
    assert result.exit_code == 0, result.output
    md = (tmp_path / "card.md").read_text()
    section = md.split("### 23c.")[1].split("\n### ")[0]
    assert "lactate_x3" in section and "Decisions flipped" in section and "Separation" in section
    page = (tmp_path / "card.html").read_text()
    assert 'alt="layer_weights"' in page
