"""A model card that follows TRIPOD+AI (Collins et al., BMJ 2024;385:e078378), from what a run knows.

``write_card(run_dir, "card.md")`` writes ``card.md`` and ``card.html`` (self-contained: inline CSS,
figures as base64). Every TRIPOD+AI item of the checklist appears, in its order, with the facts the run
directory and the manifests of its data hold: the source and cohort (cohort manifest), predictors
(the variant's schema), missing data (counted in the data file), the model and its training
(config.json, history.jsonl), internal performance with CIs, calibration and subgroups (metrics.json),
external performance (``RUN_DIR/external/*/metrics.json``). Items no file can answer (ethics, funding,
intended users, ...) say so: "to be completed by the deploying team"; items that do not apply to the run say
"not applicable" and why. A data file without a manifest leaves its items unfilled with a ``CardWarning``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import os
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import pandas as pd

from alfia.atomic import read_json_object, write_text_atomic
from alfia.errors import AlfiaError
from alfia.evaluation.format import CARD_CSS, ci_text, html_page, markdown_table
from alfia.runs import RunKind, RunLayout, run_kind

TO_COMPLETE = "*To be completed by the deploying team.*"


def _not_applicable(why: str) -> str:
    return f"Not applicable: {why}"


class CardWarning(UserWarning):
    """The card cannot fill items the run's data would answer (a table without its manifest, a file gone)."""


@dataclass(frozen=True)
class Item:
    number: str
    title: str
    section: str
    fill: Callable[["_Facts"], str | None]


class _Facts:
    """Everything the card reads, loaded once."""

    def __init__(self, run_dir: Path, cohort: str | os.PathLike | None):
        from alfia.evaluation.subgroups import recorded_data_path, source_cohort

        self.run_dir = run_dir
        self.layout = RunLayout.of(run_dir).require()
        self.config = read_json_object(self.layout.config)
        self.metrics = read_json_object(self.layout.metrics) if self.layout.metrics.exists() else None
        self.is_alfia = run_kind(self.config, self.layout.config) is RunKind.ALFIA  # ALFIA's own text model
        self.name = str(self.config.get("model_name") or run_dir.name)
        data_path = Path(cohort) if cohort is not None else recorded_data_path(self.config)
        self.data_path = data_path if data_path is not None and data_path.exists() else None
        self.data, self.data_manifest = (None, None)
        if data_path is not None and self.data_path is None:
            warnings.warn(f"card: the run's data file {data_path} is gone; items 5a, 6, 7, 10, 11 and 20 stay "
                          f"unfilled (give --cohort)", CardWarning, stacklevel=3)
        if self.data_path is not None:
            from alfia.cohorts.io import manifest_path, read_table

            self.data, self.data_manifest = read_table(self.data_path)
            if self.data_manifest is None:
                warnings.warn(f"card: {self.data_path} has no manifest ({manifest_path(self.data_path).name}), so "
                              f"the card names no data source (items 5a, 6, 7, 10, 20); keep the manifest beside "
                              f"the table", CardWarning, stacklevel=3)
        # The cohort's manifest: the data file's own if it is a cohort, else the one its text manifest names.
        self.cohort_manifest = source_cohort(self.data_path, self.data_manifest)[0] if self.data_path else None
        self.variant = ((self.data_manifest.variant if self.data_manifest else None)
                        or (self.config.get("data") or {}).get("variant") or self.config.get("variant"))
        self.external = [(name, read_json_object(self.layout.external(name).metrics))
                         for name in self.layout.external_names() if self.layout.external(name).metrics.exists()]

    @property
    def schema(self):
        from alfia.cohorts.schema import SCHEMAS

        return SCHEMAS.get(self.variant) if self.variant else None


# -- helpers -------------------------------------------------------------------------------------
_ci = partial(ci_text, style="card")  # "0.412 (95% CI 0.371–0.455)": evaluation.format's text


def _splits_table(splits: dict) -> str:
    rows = [[name, f"{s['n']:,}", f"{s['deaths']:,}", f"{100 * s['mortality_rate']:.2f}%"]
            for name, s in splits.items()]
    return markdown_table(["Split", "Stays", "Deaths", "Mortality"], rows)


# -- item fillers (None: the run cannot know) ----------------------------------------------------
def _title(f: _Facts) -> str:
    return (f"{f.name}: a model that predicts in-hospital mortality of adult ICU stays from the first "
            f"{_window(f):g} hours (development{' and external validation' if f.external else ''}).")


def _window(f: _Facts) -> float:
    cm = f.cohort_manifest or f.data_manifest
    return float(cm.window_hours) if cm is not None else 24.0


def _abstract(f: _Facts) -> str:
    parts = [f"Model **{f.name}**, run directory `{f.run_dir}`."]
    if f.metrics:
        m = f.metrics["metrics"]
        parts.append(f"On the {f.metrics['split']} split ({f.metrics['n']:,} stays, {f.metrics['n_pos']:,} deaths): "
                     f"AUPRC {_ci(m['auprc'])}, AUROC {_ci(m['auroc'])}, Brier {_ci(m['brier'])}.")
    return " ".join(parts)


def _background(f: _Facts) -> str:
    return ("ICU mortality risk in the first day supports triage, family communication and benchmarking. ALFIA "
            "turns the routine data of the first 24 h into clinical text and fine-tunes a transformer encoder "
            "(LoRA, Adaptive Layer Fusion); tabular models are the comparators (arXiv 2506.04924).")


def _objectives(f: _Facts) -> str:
    return ("Develop and internally validate a model of in-hospital death (`hospital_expire_flag`) from data "
            f"recorded in the first {_window(f):g} h of an ICU stay; compare it with tabular baselines.")


def _data_source(f: _Facts) -> str | None:
    cm = f.cohort_manifest or f.data_manifest
    if cm is None:
        return None
    schema = f.schema
    lines = [f"Source: **{cm.source}** (variant `{cm.variant}`"
             + (f": {schema.source_description}" if schema else "") + ").",
             f"Cohort file manifest: {cm.n_rows:,} stays, schema version {cm.schema_version}, SHA-256 "
             f"`{cm.content_sha256[:16]}…`, built {cm.created_at} by ALFIA {cm.alfia_version}."]
    if cm.source == "synthetic":
        lines.append("**These are synthetic data** generated to match published summary statistics "
                     f"({cm.extra.get('generator', {}).get('calibration', '')}); no patient is real.")
    return " ".join(lines)


def _participants(f: _Facts) -> str | None:
    cm = f.cohort_manifest
    if cm is None:
        return None
    out = [f"One row per ICU stay; predictors from -6 h to +{cm.window_hours:g} h of ICU admission (scores) or "
           "known at admission."]
    if "attrition" in cm.extra:
        out.append("Inclusion (attrition): " + " → ".join(f"{k} {v}" for k, v in cm.extra["attrition"].items()) + ".")
    report = cm.extra.get("report")
    if isinstance(report, dict) and "n_records_descriptors_only" in report:
        out.append(f"Records with descriptors only: {report['n_records_descriptors_only']}.")
    return " ".join(out)


def _data_preparation(f: _Facts) -> str | None:
    """Item 7: how the cohort's values were made (extraction, window, implausible values)."""
    cm = f.cohort_manifest or f.data_manifest
    if cm is None:
        return None
    out = [f"Values aggregated over the record window of each predictor (up to {_window(f):g} h after ICU "
           "admission); nothing recorded later enters."]
    report = cm.extra.get("report")
    if isinstance(report, dict) and isinstance(report.get("dropped_implausible"), dict):
        dropped = sum(report["dropped_implausible"].values())
        out.append(f"{dropped:,} implausible measurements were dropped (per parameter in the cohort manifest).")
    ti = cm.extra.get("temporal_integrity")
    if isinstance(ti, dict):
        out.append(f"{ti.get('values_excluded_out_of_window', 0)} source values outside their windows were excluded.")
    if cm.source == "synthetic":
        out.append("Synthetic rows are generated already aggregated.")
    return " ".join(out)


def _predictor_handling(f: _Facts) -> str | None:
    """Item 12b: what the model does with the predictors."""
    m = f.data_manifest
    if f.is_alfia:
        model = f.config.get("model") or {}
        text = ""
        if m is not None and m.kind == "text":
            text = (f"Each stay rendered as clinical text with the `{m.extra.get('template')}` template (version "
                    f"{m.extra.get('template_version')}, missing values: `{m.extra.get('missing')}`), from cohort "
                    f"`{m.extra.get('cohort_file')}` (SHA-256 `{str(m.extra.get('cohort_sha256'))[:16]}…`). ")
        return (text + f"Texts are tokenised and cut at {model.get('max_length')} tokens; "
                + ("the pooled layers' states are standardised per dimension (fitted on 1,000 training texts)."
                   if model.get("standardise_states", True) else "no standardisation of the states."))
    if f.config.get("model_family") == "series":
        return ("Hourly values forward-filled within a stay, gaps before the first measurement set to the train "
                "median, standardised with the train mean and SD, with a measured mask and the time since the last "
                "measurement (`preprocessing.json`).")
    return "Tabular predictors as in the cohort file; preprocessing per model family fitted on the training rows."


def _outcome(f: _Facts) -> str:
    schema = f.schema
    src = f" (source column `{schema.outcome_source_name}`)" if schema else ""
    return f"In-hospital death, `hospital_expire_flag` = 1{src}; recorded for the whole hospitalisation."


def _predictors(f: _Facts) -> str | None:
    schema = f.schema
    if schema is None:
        return None
    groups: dict[str, list[str]] = {}
    for v in schema.predictors:
        groups.setdefault(v.group, []).append(v.name + (f" ({v.unit})" if v.unit else ""))
    rows = [[g, len(names), ", ".join(names[:8]) + (" …" if len(names) > 8 else "")] for g, names in groups.items()]
    return (f"{len(schema.predictors)} predictors of the `{schema.variant}` schema, each with its record window "
            "(no value after the window; the leakage guard refuses outcome-derived columns):\n\n"
            + markdown_table(["Group", "Count", "Predictors"], rows))


def _rows_used(f: _Facts) -> str:
    """Which stays trained the model: all eligible, or the --max-train-rows subsample."""
    limit = (f.config.get("train") or {}).get("max_train_rows")
    n_rows = (f.config.get("data") or {}).get("n_rows") or {}
    cm = f.cohort_manifest or f.data_manifest
    eligible = (cm.splits.get("train") or {}).get("n") if cm is not None and cm.splits else None
    if limit is not None and (eligible is None or n_rows.get("train", limit) < eligible):
        return (f"Training used a seeded, outcome-stratified subsample of {n_rows.get('train', limit):,} of the "
                f"{eligible:,} training stays" if eligible else
                f"Training used a seeded, outcome-stratified subsample of {limit:,} training stays") + \
            " (`--max-train-rows`); validation and test used all of theirs."
    return "All eligible stays of each split were used."


def _sample_size(f: _Facts) -> str | None:
    cm = f.cohort_manifest or f.data_manifest
    if cm is None or not cm.splits:
        return None
    s = cm.splits.get("all") or {}
    n_predictors = len(f.schema.predictors) if f.schema else None
    epp = (f" ({s['deaths'] / n_predictors:.1f} deaths per candidate predictor)"
           if n_predictors and s.get("deaths") is not None else "")
    return (f"No formal sample-size calculation: the size is the cohort's, {s.get('n', 0):,} stays with "
            f"{s.get('deaths', 0):,} deaths{epp}. {_rows_used(f)} Events per split: item 21.")


def _missing(f: _Facts) -> str | None:
    if f.data is None or f.schema is None:
        return None
    present = [v.name for v in f.schema.predictors if v.name in f.data.columns]
    share = f.data[present].isna().mean().sort_values(ascending=False)
    absent = [v.name for v in f.schema.predictors if v.name not in f.data.columns]
    rows = [[name, f"{100 * s:.1f}%"] for name, s in share.head(10).items()]
    mode = (f.data_manifest.extra.get("missing") if f.data_manifest is not None else None) or "omit"
    how = (f"ALFIA: a missing value is left out of the text (`--missing {mode}`); no imputation." if f.is_alfia else
           "Baselines: GBDTs read missing values natively; other models get median imputation plus missingness "
           "indicators, fitted on the training rows.")
    return (f"{how} Stays with at least one missing predictor: "
            f"{100 * f.data[present].isna().any(axis=1).mean():.1f}%. Most often missing:\n\n"
            + markdown_table(["Predictor", "Missing"], rows)
            + (f"\n\nNot in the data at all: {', '.join(absent)}." if absent else ""))


def _analysis_data(f: _Facts) -> str:
    n_rows = (f.config.get("data") or {}).get("n_rows") or f.config.get("n_rows") or {}
    text = ("Fixed stratified split (75/12.5/12.5, seed 42; a patient's stays never cross splits where a patient id "
            "exists): train fits, validation selects (early stopping, hyperparameters, thresholds), test is only "
            "predicted.")
    if n_rows:
        text += " Rows used: " + ", ".join(f"{k} {v:,}" for k, v in n_rows.items()) + "."
    return text


def _what_trained(config: dict) -> str:
    """What of the encoder the run trained, from config.json (its ``encoder`` section when it has one)."""
    model, encoder = config["model"], config.get("encoder") or {}
    layers = encoder.get("trained_layers", model.get("train_layers", 0 if model.get("finetune") == "frozen" else "all"))
    depth = encoder.get("layers")
    lora = model.get("lora", {})
    # LoRA's r and alpha only where a LoRA adapter was trained (a frozen encoder has none)
    how = (f"LoRA r={lora.get('r')}, alpha={lora.get('alpha')}" if model.get("finetune") == "lora"
           else "full fine-tuning of their weights")
    if layers == 0 or model.get("finetune") == "frozen":
        what = "encoder frozen (only ALF and the head trained)"
    elif layers == "all" or layers == depth:
        what = f"every encoder layer trained ({how})"
    else:
        what = f"the top {layers} of {depth or '?'} encoder layers trained ({how}), the layers below frozen"
    if model.get("prune_layers"):
        what += f"; layers pruned before training: `{model['prune_layers']}`"
    return what


def _schedule(c: dict) -> str:
    """The phases an ALFIA run trained, with the settings each used."""
    model, train, encoder = c["model"], c["train"], c.get("encoder") or {}
    trained = encoder.get("trained_layers", model.get("train_layers"))
    head_lr = train.get("head_lr") if train.get("head_lr") is not None else train.get("lr")
    if trained == 0:
        return (f"ALF + the head trained over cached frozen-encoder states for up to {train.get('head_epochs')} "
                f"epochs (AdamW lr {head_lr})")
    phases = []
    if train.get("head_from"):
        phases.append(f"pooler + head started from the run `{train['head_from']}`")
    elif train.get("head_epochs"):
        phases.append(f"a head warm start over cached states for up to {train['head_epochs']} epochs (lr {head_lr})")
    rows = train.get("rows_per_epoch")
    phases.append(f"{'then ' if phases else ''}the encoder jointly with ALF + head for up to {train.get('epochs')} "
                  f"epochs of {f'{rows:,} rows' if rows else 'all training rows'} (AdamW lr {train.get('lr')}, head "
                  f"lr {head_lr})")
    return "; ".join(phases)


def _model(f: _Facts) -> str:
    c = f.config
    if f.is_alfia:
        model, train = c["model"], c["train"]
        result = c.get("result") or {}
        stopped = " (stopped early)" if result.get("stopped_early") else ""
        phase = f", {result['best_phase']} phase" if result.get("best_phase") else ""
        return (f"ALFIA: encoder `{model.get('backbone') or 'all-MiniLM-L6-v2 (offline default)'}`, "
                f"{_what_trained(c)}; recipe `{c.get('recipe') or 'none (configs given directly)'}`, pooler "
                f"`{model.get('pooler')}` over the top {model.get('n_fusion_layers')} layers, Attentional Classifier "
                f"Head; max {model.get('max_length')} tokens. Training: {_schedule(c)}; batch "
                f"{train.get('batch_size')}, early stopping on validation AUPRC (patience {train.get('patience')}), "
                f"pos_weight {train.get('pos_weight')}, seed {train.get('seed')}. {result.get('epochs_run')} epochs "
                f"were run{stopped}; best epoch {result.get('best_epoch')}{phase} (val AUPRC "
                f"{(result.get('best_val_auprc') or float('nan')):.3f}); "
                f"{result.get('train_seconds_total', '?')} s of training. {_rows_used(f)} Full configuration: "
                f"`config.json`.")
    hyper = json.dumps(c.get("selected_hyperparameters") or c.get("hyperparameters") or {}, default=str)
    what = c.get("description")
    return (f"{f.name} ({c.get('library', c.get('model_family', 'tabular model'))}){': ' + what if what else ''}. "
            f"Hyperparameters chosen on validation AUPRC: `{hyper[:400]}`. Full configuration: `config.json`.")


def _performance_measures(f: _Facts) -> str:
    return ("AUPRC (first: mortality is rare), AUROC, F1/F2, sensitivity, specificity, PPV, NPV at the max-F1 "
            "threshold chosen on validation, Brier score, calibration slope and intercept, ECE, decision curves; "
            "95% CIs from a stratified bootstrap (deaths and survivors resampled separately).")


def _calibrator(f: _Facts) -> dict | None:
    calib = (f.config.get("result") or {}).get("calibration") or f.config.get("calibration") or f.config.get("calibrator")
    return calib if isinstance(calib, dict) else None


def _recalibration(f: _Facts) -> str:
    calib = _calibrator(f)
    if calib is None:
        return _not_applicable("the model's probabilities are its own; no post-hoc calibrator was fitted.")
    method, fitted = calib.get("method"), calib.get("fitted_on") or "the validation split"
    if method == "platt":
        return (f"Platt scaling fitted on {fitted}: p = sigmoid({calib.get('slope'):.4g} × logit + "
                f"{calib.get('intercept'):.4g}) (`calibration.json`); every probability the run writes and "
                "`alfia predict` gives goes through it, and the thresholds were chosen on calibrated probabilities.")
    if method == "isotonic":
        return (f"Isotonic regression on the logit, fitted on {fitted}, {calib.get('knots_x')} knots "
                "(`calibration.json`); applied to every probability the run writes.")
    if method == "none":
        return "No post-hoc calibration (`--calibration none`): the probabilities are the model's own sigmoid."
    return f"Post-hoc calibration: `{json.dumps(calib, default=str)}`."


def _updating_results(f: _Facts) -> str:
    calib = _calibrator(f)
    updated = ("the calibrator of item 12f, fitted once on the development validation split"
               if calib and calib.get("method") not in (None, "none") else "none")
    external = " External cohorts were scored with it unchanged, not recalibrated." if f.external else ""
    return f"No model updating after development; post-hoc recalibration: {updated}.{external}"


def _class_imbalance(f: _Facts) -> str:
    pw = (f.config.get("train") or {}).get("pos_weight")
    return ("Mortality is the minority class; AUPRC is the primary metric and the split is stratified."
            + (f" Loss weighted with pos_weight = {pw}." if pw is not None else " No reweighting of the loss."))


def _fairness(f: _Facts) -> str:
    sub = (f.metrics or {}).get("subgroups") or {}
    if not sub.get("groups"):
        return ("Not assessed: the evaluation found no sex, age or ICU-unit column to form subgroups (give "
                "`alfia evaluate RUN --cohort COHORT`). " + TO_COMPLETE)
    return ("Performance is reported by sex, age band and ICU unit type (item 23b). No fairness constraint was "
            "applied in training.")


def _output(f: _Facts) -> str:
    t = (f.metrics or {}).get("thresholds") or {}
    thr = f" Default alert threshold {t['f1']:.3f} (max F1, chosen on {t.get('chosen_on')})." if "f1" in t else ""
    return "A probability of in-hospital death per stay; a stay is flagged when probability >= threshold." + thr


def _flow(f: _Facts) -> str | None:
    cm = f.cohort_manifest or f.data_manifest
    if cm is None:
        return None
    out = []
    if "attrition" in cm.extra:
        out.append("Stays at each inclusion step: " + " → ".join(f"{k} {v}" for k, v in cm.extra["attrition"].items())
                   + ".")
    n_rows = (f.config.get("data") or {}).get("n_rows") or {}
    if n_rows:
        out.append("Stays in this run: " + ", ".join(f"{k} {v:,}" for k, v in n_rows.items()) + ". " + _rows_used(f))
    return " ".join(out) or None


def _characteristics(f: _Facts) -> str | None:
    if f.data is None or f.variant is None:
        return None
    from alfia.cohorts.describe import describe_cohort, to_markdown

    try:
        table = describe_cohort(f.data, f.variant)
    except (AlfiaError, KeyError, ValueError, TypeError):  # a courtesy table; the card stands without it
        return None
    lines = to_markdown(table).splitlines()
    return "\n".join(lines[:22]) + ("\n\n(First rows of the Table 1; `alfia cohort describe` prints it all.)"
                                     if len(lines) > 22 else "")


def _n_events(f: _Facts) -> str | None:
    cm = f.cohort_manifest or f.data_manifest
    if cm is None or not cm.splits:
        return None
    return "Stays and deaths per split of the cohort:\n\n" + _splits_table(cm.splits)


def _specification(f: _Facts) -> str:
    files = sorted(p.name for p in f.run_dir.iterdir() if p.is_file())
    return ("The fitted model is the run directory itself (load with `alfia predict` or "
            "`ALFIAClassifier.from_pretrained`): " + ", ".join(f"`{n}`" for n in files) + ".")


def _performance(f: _Facts) -> str | None:
    if not f.metrics:
        return None
    m = f.metrics["metrics"]
    from alfia.evaluation.format import METRIC_LABELS

    rows = [[METRIC_LABELS.get(k, k), _ci(v)] for k, v in m.items()]
    text = (f"Internal validation, {f.metrics['split']} split ({f.metrics['n']:,} stays, {f.metrics['n_pos']:,} "
            f"deaths):\n\n" + markdown_table(["Metric", "Value (95% CI)"], rows))
    cal = f.metrics.get("calibration_curve")
    if cal:
        how = cal.get("method") or "equal-width bins of predicted risk"
        text += (f"\n\nCalibration in {len(cal['mean_prob'])} non-empty bins ({how}):\n\n"
                 + markdown_table(["Mean predicted", "Observed", "95% CI", "Stays"],
                                  [[f"{p:.3f}", f"{o:.3f}", f"{lo:.3f}–{hi:.3f}", c] for p, o, lo, hi, c in
                                   zip(cal["mean_prob"], cal["observed"], cal["ci_low"], cal["ci_high"],
                                       cal["count"])]))
    dca = f.metrics.get("decision_curve")
    if dca:
        from alfia.evaluation.format import useful_thresholds_text as _useful_text

        text += (f"\n\nDecision curve: net benefit above treat-all and treat-none at threshold probabilities "
                 f"{_useful_text(dca)}.")
    for name, ext in f.external:
        e = ext["metrics"]
        text += (f"\n\nExternal validation on `{name}` ({ext['n']:,} stays, {ext['n_pos']:,} deaths): AUPRC "
                 f"{_ci(e['auprc'])}, AUROC {_ci(e['auroc'])}, calibration slope {_ci(e['calibration_slope'])}, "
                 f"intercept {_ci(e['calibration_intercept'])}.")
    if not f.external:
        text += "\n\nExternal validation: none in this run directory (`alfia evaluate RUN --external COHORT`)."
    return text


def _subgroups(f: _Facts) -> str | None:
    sub = (f.metrics or {}).get("subgroups") or {}
    if not sub.get("groups"):
        return None
    from alfia.evaluation.subgroups import SUBGROUP_LABELS

    out = [f"Subgroup columns from `{sub.get('source')}` (joined by stay_id); CIs by stratified bootstrap within "
           "each subgroup."]
    for attribute, entries in sub["groups"].items():
        rows = [[e["level"], e["n"], e["n_pos"], _ci(e["metrics"]["auroc"]), _ci(e["metrics"]["sensitivity"]),
                 _ci(e["metrics"]["specificity"]), f"{e['metrics']['observed_rate']['value']:.3f}",
                 f"{e['metrics']['mean_prob']['value']:.3f}"] for e in entries]
        out += ["", f"**{SUBGROUP_LABELS.get(attribute, attribute)}**", "",
                markdown_table(["Level", "Stays", "Deaths", "AUROC", "Sensitivity", "Specificity", "Observed",
                                "Predicted"], rows)]
    return "\n".join(out)


# -- issue 23: alfia robustness / alfia analyze, read from RUN/robustness and RUN/analysis when they exist -------
def _robustness_and_latent(f: _Facts) -> str | None:
    layout = RunLayout.of(f.run_dir)
    parts = []
    robustness = layout.robustness / "robustness.json"
    if robustness.is_file():
        doc = read_json_object(robustness)

        def share(x) -> str:
            return "—" if x is None else f"{100 * x:.1f}%"

        rows = [[r["model"], r["perturbation"], f"{r['n_applied']}/{r['n_stays']}", share(r.get("flip_rate")),
                 "—" if r.get("mean_abs_delta_prob") is None else f"{r['mean_abs_delta_prob']:.3f}",
                 share(r.get("latent_flip_rate")), share(r.get("share_expected_direction"))]
                for r in doc.get("results", []) if r.get("n_applied")]
        parts.append(f"Robustness to clinically meaningful edits of {doc.get('n_stays')} {doc.get('split')} stays "
                     f"(`alfia robustness`; edits made on the cohort row and re-rendered by the template):\n\n"
                     + markdown_table(["Model", "Edit", "Stays edited", "Decisions flipped", "Mean |Δp|",
                                       "Latent flips", "Risk up"], rows))
        targets = [f"{t['model']}: {t['target']}: {share(t['value'])} ({'met' if t['met'] else 'not met'})"
                   for t in doc.get("targets", [])]
        if targets:
            parts.append("Targets: " + "; ".join(targets) + ".")
    analysis = layout.analysis / "analysis.json"
    if analysis.is_file():
        doc = read_json_object(analysis)
        rows = [[r["model"], r["representation"], f"{r['test_auprc']:.3f}", f"{r['test_auroc']:.3f}",
                 f"{r['separation']:.2f}"] for r in doc.get("embeddings", [])]
        parts.append("Latent space (`alfia analyze`; layer weights in the figures): an MLP on each representation, "
                     "and the separation of deaths from survivors in UMAP (higher is better):\n\n"
                     + markdown_table(["Model", "Representation", "MLP test AUPRC", "MLP test AUROC",
                                       "Separation"], rows))
    return "\n\n".join(parts) or ("Not measured for this run: `alfia robustness RUN --input TEXT` and `alfia analyze RUN "
                                   "--input TEXT` write RUN/robustness and RUN/analysis, which this item reports.")


def _analysis_figures(layout: RunLayout) -> dict[str, Path]:
    return {"layer_weights": layout.analysis / "figures" / "layer_weights.png"}


def _interpretation(f: _Facts) -> str | None:
    return None


def _limitations(f: _Facts) -> str:
    cm = f.cohort_manifest or f.data_manifest
    items = ["Single data source; internal validation only unless an external result is listed in item 23a.",
             "Thresholds are chosen on the validation split; local prevalence changes PPV and NPV."]
    if cm is not None and cm.source == "synthetic":
        items.insert(0, "Developed on synthetic data: the numbers say nothing about real patients.")
    if f.is_alfia and (f.config.get("model") or {}).get("max_length", 512) < 512:
        items.append("Texts longer than the token limit are truncated.")
    return "\n".join(f"- {i}" for i in items) + "\n\nFurther limitations: " + TO_COMPLETE


def _intended_use(f: _Facts) -> str:
    return ("Research use: estimating in-hospital mortality risk of adult ICU stays after the first 24 h, in "
            "settings like the development data. Not a medical device; not validated for individual treatment "
            "decisions. Intended users and clinical pathway: " + TO_COMPLETE)


def _code(f: _Facts) -> str:
    from alfia import __version__

    return f"ALFIA {__version__} (open source); the run's `config.json` holds every setting needed to rerun it."


def _unknown(f: _Facts) -> None:
    return None


def _source(f: _Facts) -> str | None:
    cm = f.cohort_manifest or f.data_manifest
    return cm.source if cm is not None else None


# Collection periods as the sources publish them (dates inside MIMIC are shifted for de-identification).
SOURCE_PERIODS = {"mimic-iv": "admissions to Beth Israel Deaconess Medical Center, 2008–2019 (MIMIC-IV)",
                  "eicu": "ICU admissions to 208 US hospitals, 2014–2015 (eICU-CRD)",
                  "physionet2012": "ICU stays of MIMIC-II (Beth Israel Deaconess Medical Center, 2001–2008), as "
                                   "released for the PhysioNet/CinC Challenge 2012"}


def _dates(f: _Facts) -> str | None:
    source = _source(f)
    if source == "synthetic":
        return _not_applicable("synthetic data have no collection period.")
    if source in SOURCE_PERIODS:
        return f"{SOURCE_PERIODS[source][0].upper()}{SOURCE_PERIODS[source][1:]}."
    return None


def _treatments(f: _Facts) -> str:
    return _not_applicable(f"the model predicts from the first {_window(f):g} h only; treatments after that are not "
                           "modelled, and those within the window (e.g. ventilation, vasopressors) enter as "
                           "predictors (items 9a–9b).")


def _outcome_assessment(f: _Facts) -> str:
    if _source(f) == "synthetic":
        return _not_applicable("the outcome of synthetic stays is generated, not assessed.")
    return _not_applicable("the outcome is the hospital's recorded discharge status in the source database, "
                           "recorded independently of this model's predictors; there was no separate assessment "
                           "to blind.")


def _clusters(f: _Facts) -> str:
    if (f.variant or "").startswith("eicu"):
        return ("Not modelled: eICU stays come from many hospitals; the split is by stay, not by hospital, and no "
                "hospital effect is in the model. " + TO_COMPLETE)
    if _source(f) == "synthetic":
        return _not_applicable("synthetic stays have no centres.")
    return _not_applicable("a single-centre source; the stays form no clusters beyond patients, whose stays never "
                           "cross splits where a patient id exists.")


def _external_methods(f: _Facts) -> str:
    if f.external:
        return "Scored on another labelled table with the thresholds chosen on the development validation split."
    return _not_applicable("no external validation in this run directory (`alfia evaluate RUN --external COHORT`).")


def _development_vs_evaluation(f: _Facts) -> str:
    text = ("Development and internal evaluation data are random, stratified splits of one cohort: the same "
            "source, period, definitions and preprocessing.")
    if f.external:
        text += (" External cohorts: see each `external/<name>/shift.json` (variable mapping, imputed variables, "
                 "covariate and outcome shift).")
    return text


def _compare_splits(f: _Facts) -> str | None:
    cm = f.cohort_manifest or f.data_manifest
    if cm is None or not cm.splits:
        return None
    return ("Mortality per split (the split is stratified by outcome, so the rates differ by chance only):\n\n"
            + _splits_table(cm.splits))


def _data_sharing(f: _Facts) -> str | None:
    source = _source(f)
    if source == "synthetic":
        return "Synthetic data: regenerated exactly by `alfia cohort synthetic` with the manifest's seed and size."
    if source == "physionet2012":
        return ("PhysioNet/CinC Challenge 2012 data are open access (https://physionet.org/content/challenge-2012/"
                "1.0.0/); the cohort is rebuilt by `alfia cohort physionet2012`.")
    if source in ("mimic-iv", "eicu"):
        return (f"{source} is available under credentialed access on PhysioNet; it may not be shared. The cohort is "
                f"rebuilt by `alfia cohort {source}`.")
    return None


ITEMS: tuple[Item, ...] = (
    Item("1", "Title", "Title", _title),
    Item("2", "Abstract", "Abstract", _abstract),
    Item("3a", "Healthcare context and rationale", "Introduction", _background),
    Item("3b", "Target population and intended use", "Introduction", _intended_use),
    Item("3c", "Known health inequalities", "Introduction", _unknown),
    Item("4", "Objectives", "Introduction", _objectives),
    Item("5a", "Data sources", "Methods", _data_source),
    Item("5b", "Dates of data collection", "Methods", _dates),
    Item("6a–6b", "Setting and eligibility criteria of participants", "Methods", _participants),
    Item("6c", "Treatments received", "Methods", _treatments),
    Item("7", "Data preparation", "Methods", _data_preparation),
    Item("8a", "Outcome definition and timing", "Methods", _outcome),
    Item("8b", "Outcome assessment and blinding", "Methods", _outcome_assessment),
    Item("9a–9b", "Choice, definition and timing of predictors", "Methods", _predictors),
    Item("10", "Sample size", "Methods", _sample_size),
    Item("11", "Missing data", "Methods", _missing),
    Item("12a", "Data used for development and evaluation", "Methods", _analysis_data),
    Item("12b", "Handling of predictors", "Methods", _predictor_handling),
    Item("12c", "Model type, building, hyperparameter tuning and internal validation", "Methods", _model),
    Item("12d", "Heterogeneity across clusters", "Methods", _clusters),
    Item("12e", "Performance measures", "Methods", _performance_measures),
    Item("12f", "Model updating and recalibration", "Methods", _recalibration),
    Item("12g", "External validation methods", "Methods", _external_methods),
    Item("13", "Class imbalance", "Methods", _class_imbalance),
    Item("14", "Fairness", "Methods", _fairness),
    Item("15", "Model output", "Methods", _output),
    Item("16", "Differences between development and evaluation data", "Methods", _development_vs_evaluation),
    Item("17", "Ethical approval", "Methods", _unknown),
    Item("18a", "Funding", "Open science", _unknown),
    Item("18b", "Conflicts of interest", "Open science", _unknown),
    Item("18c", "Protocol", "Open science", _unknown),
    Item("18d", "Registration", "Open science", _unknown),
    Item("18e", "Data sharing", "Open science", _data_sharing),
    Item("18f", "Code sharing", "Open science", _code),
    Item("19", "Patient and public involvement", "Patient and public involvement", _unknown),
    Item("20a", "Flow of participants", "Results", _flow),
    Item("20b", "Characteristics of the data", "Results", _characteristics),
    Item("20c", "Comparison of development and evaluation data", "Results", _compare_splits),
    Item("21", "Number of participants and outcome events", "Results", _n_events),
    Item("22", "Full model specification", "Results", _specification),
    Item("23a", "Model performance with confidence intervals (internal, external, calibration)", "Results",
         _performance),
    Item("23b", "Performance in subgroups", "Results", _subgroups),
    Item("23c", "Robustness to input edits and latent space (beyond TRIPOD+AI)", "Results", _robustness_and_latent),
    Item("24", "Model updating results", "Results", _updating_results),
    Item("25", "Interpretation", "Discussion", _interpretation),
    Item("26", "Limitations", "Discussion", _limitations),
    Item("27a", "Usability in the intended setting", "Discussion", _unknown),
    Item("27b", "Requirements for use (inputs, expertise)", "Discussion", lambda f: (
        "Inputs: the cohort's predictors for one stay (or its clinical text), scored by `alfia predict`; "
        "a CPU suffices for inference. Staff training and workflow: " + TO_COMPLETE)),
    Item("27c", "Next steps and future research", "Discussion", _unknown),
)


def card_markdown(run_dir: str | os.PathLike, *, cohort: str | os.PathLike | None = None) -> str:
    """The model card of a run as Markdown (``metrics.json`` must exist: run ``alfia evaluate`` first)."""
    facts = _Facts(Path(run_dir), cohort)
    lines = [f"# Model card — {facts.name}", "",
             f"Reported against the TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378). Generated "
             f"{_dt.datetime.now().isoformat(timespec='seconds')} by `alfia card` from `{facts.run_dir}`. Items "
             f"marked *to be completed by the deploying team* cannot be known from the run's files.", ""]
    section = None
    for item in ITEMS:
        if item.section != section:
            section = item.section
            lines += [f"## {section}", ""]
        body = item.fill(facts)
        lines += [f"### {item.number}. {item.title}", "", body if body else TO_COMPLETE, ""]
    return "\n".join(lines)


def card_html(markdown: str, figures: dict[str, Path] | None = None) -> str:
    """One self-contained HTML page: the card, plus the run's figures inline (base64 PNG)."""
    from markdown_it import MarkdownIt

    # html=False: raw HTML in the Markdown is rendered as text. Every value of the card (a model name, a
    # source, a variable) comes from a file a user may have edited, so it reaches the page escaped, here, once.
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    imgs = "".join(f'<img alt="{html.escape(name)}" src="data:image/png;base64,'
                   f'{base64.b64encode(path.read_bytes()).decode("ascii")}">'
                   for name, path in (figures or {}).items() if path.exists())
    figure_block = f"<h2>Figures</h2><div>{imgs}</div>" if imgs else ""
    return html_page("Model card", [body, figure_block], css=CARD_CSS)


def write_card(run_dir: str | os.PathLike, out: str | os.PathLike = "card.md", *,
               cohort: str | os.PathLike | None = None, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``out`` (Markdown) and the same card as HTML beside it (``.html``); returns both paths.

    Existing files are replaced only with ``overwrite``, and never a file of the run or the cohort
    (``alfia.outputs.check_output``, before anything is computed). Evaluates the run first (``alfia evaluate``'s
    defaults) when it has no metrics.json yet.
    """
    from alfia.cohorts.io import manifest_path
    from alfia.outputs import check_output

    layout = RunLayout.of(run_dir).require()
    out = Path(out)
    if out.suffix.lower() == ".html":
        out = out.with_suffix(".md")
    # An earlier card (.md/.html) in the run folder is no input; every other file there is one.
    own = {out.resolve(), out.with_suffix(".html").resolve()} if out.suffix.lower() == ".md" else set()
    run_files = [p for p in layout.root.rglob("*") if p.resolve() not in own]
    cohorts = [] if cohort is None else [Path(cohort), manifest_path(cohort)]
    check_output(out, inputs=[layout.root, *run_files, *cohorts], overwrite=overwrite,
                 companions=[out.with_suffix(".html")])
    if not layout.metrics.exists():
        from alfia.evaluation.report import evaluate_run

        evaluate_run(layout.root, cohort=cohort)
    markdown = card_markdown(layout.root, cohort=cohort)
    figures = {name: layout.figures / f"{name}.png" for name in ("calibration", "decision_curve", "roc", "pr")}
    figures.update(_analysis_figures(layout))
    md_path = write_text_atomic(out, markdown)
    html_path = write_text_atomic(out.with_suffix(".html"), card_html(markdown, figures))
    return md_path, html_path


def card_items() -> pd.DataFrame:
    """The checklist items the card reports, in order (number, section, title)."""
    return pd.DataFrame([{"number": i.number, "section": i.section, "title": i.title} for i in ITEMS])
