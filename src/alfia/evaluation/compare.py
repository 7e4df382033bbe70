"""``alfia compare``: many run directories, one report.

Every run is scored by the same :func:`~alfia.evaluation.report.score_split` on the same test stays (checked),
with the same bootstrap seed, so all models see the same resamples. Every model is calibrated on its own val
rows the way ALFIA is (``calibration.calibrate_on_val``: ALFIA's own calibrator, a Platt map for the others),
and calibration is reported before and after. :func:`build_comparison` returns a :class:`Comparison`;
``render_md`` / ``render_html`` / ``write`` turn it into comparison.md, report.html and the CSV/JSON files.

- Paired bootstrap tests between every pair of models (one bootstrap per model: ``PairedResamples``), and of
  each ALFIA run against the baseline that is best on VALIDATION AUPRC (the test split chooses nothing).
- Rank: 1 + the number of models whose test AUPRC is higher with a paired 95% CI that excludes 0; models no
  paired test separates share a rank.
- Small-sample warnings (``format.MIN_EVENTS``, ``format.MAX_SLOPE_CI_WIDTH``) beside every metric they
  concern; zero-width CIs are not shown as results; test-optimal F1/F2 stay out of the headline tables.
- The data source (from the cohort manifest; synthetic data said so), Table 1 of the cohort and each run's
  training settings.

Runs that scored external cohorts (``RUN_DIR/external/<name>/``) add, per external cohort, a table of
internal test against external results, a forest plot of both, and the shift report (covariate
shift, missingness, outcome rates, calibration in the large, imputed variables).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.atomic import write_atomic, write_json_atomic, write_text_atomic
from alfia.cohorts.schema import ID_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.evaluation.bootstrap import PairedResamples
from alfia.evaluation.calibration import calibrate_on_val
from alfia.evaluation.format import (
    METRIC_LABELS, MIN_EVENTS, TEST_OPTIMAL_METRICS, WARNING_MARK, ci_text, diff_ci_text, diff_text, html_image,
    html_page, html_table, markdown_table, p_text, useful_thresholds_text,
)
from alfia.evaluation.metrics import RankedScores, ranking_metrics
from alfia.evaluation.report import CALIBRATION_METRICS, RANKING_METRICS, score_split
from alfia.runs import UNCALIBRATED_COLUMN, RunKind, RunLayout, read_config, read_predictions, run_kind

HEADLINE_METRICS = ("auprc", "auroc")
OPERATING_METRICS = ("f1", "sensitivity", "specificity", "ppv", "npv")
PAIRED_METRICS = ("auprc", "auroc")


@dataclass
class RunEntry:
    run_dir: Path
    name: str
    kind: RunKind
    config: dict
    predictions: pd.DataFrame  # all rows (val rows choose the thresholds), calibrated on val (calibrate_on_val)
    rows: pd.DataFrame         # the compared split only, indexed by stay_id
    calibrated: bool           # the run applied its own calibrator (calibration.json)
    calibration: str           # how the compared probabilities were calibrated, for the report
    val_auprc: float | None    # what chooses the best baseline
    result: dict | None = None

    @property
    def is_alfia(self) -> bool:
        return self.kind.is_alfia

    @property
    def family(self) -> str:
        return self.kind.value


def find_run_dirs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Run directories among ``paths``: a path holding predictions.parquet is a run; any other folder is
    searched (recursively) for runs. Hidden folders are skipped. Order: as given, then sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise AlfiaError(f"{path}: no such file or folder")
        if RunLayout.of(path).predictions.exists():
            found.append(path)
            continue
        if not path.is_dir():
            raise AlfiaError(f"{path}: not a run directory (a run directory holds predictions.parquet)")
        name = RunLayout.of(path).predictions.name
        inner = sorted(p.parent for p in path.rglob(name)
                       if not any(part.startswith(".") for part in p.relative_to(path).parts)
                       and not RunLayout.of(p.parent).is_external)
        if not inner:
            raise AlfiaError(f"{path}: holds no run directory (no {name} in it or below it)")
        found.extend(inner)
    unique, seen = [], set()
    for run in found:
        key = run.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(run)
    return unique


def _auprc_of(rows: pd.DataFrame) -> float | None:
    if rows.empty or rows["label"].nunique() < 2:
        return None
    y, prob = rows["label"].to_numpy(dtype=float), rows["prob"].to_numpy(dtype=float)
    return float(ranking_metrics(y, prob, np.ones((1, y.size)), RankedScores.of(y, prob))["auprc"][0])


def _load_runs(run_dirs: Sequence[Path], split: str) -> list[RunEntry]:
    entries = []
    for run_dir in run_dirs:
        layout = RunLayout.of(run_dir)
        pred = read_predictions(layout.predictions)
        if (pred[SPLIT_COLUMN] != split).all():
            raise AlfiaError(f"{layout.predictions}: no rows in split {split!r}")
        config = read_config(run_dir)
        kind = run_kind(config, layout.config)
        name = str(config.get("model_name") or Path(run_dir).resolve().name)
        calibrated = layout.calibration.exists() or UNCALIBRATED_COLUMN in pred.columns
        pred, how = calibrate_on_val(pred, calibrated=calibrated)
        rows = pred.loc[pred[SPLIT_COLUMN] == split]
        entries.append(RunEntry(Path(run_dir), name, kind, config, pred, rows.set_index(ID_COLUMN), calibrated, how,
                                _auprc_of(pred.loc[pred[SPLIT_COLUMN] == "val"])))
    counts = pd.Series([e.name for e in entries]).value_counts()
    for entry in entries:
        if counts[entry.name] > 1:  # two runs named alike: tell them apart by folder
            entry.name = f"{entry.name} ({entry.run_dir.name})"
    return entries


def _check_same_stays(entries: Sequence[RunEntry], split: str) -> None:
    reference = entries[0]
    for entry in entries[1:]:
        only_ref = reference.rows.index.difference(entry.rows.index)
        only_this = entry.rows.index.difference(reference.rows.index)
        if len(only_ref) or len(only_this):
            raise AlfiaError(
                f"runs were not scored on the same {split} stays: {entry.run_dir} lacks {len(only_ref)} stay_id(s) "
                f"of {reference.run_dir} (e.g. {list(only_ref[:3])}) and has {len(only_this)} it lacks "
                f"(e.g. {list(only_this[:3])}); compare runs trained on the same cohort and split")
        labels = entry.rows["label"].reindex(reference.rows.index)
        disagree = labels.to_numpy() != reference.rows["label"].to_numpy()
        if disagree.any():
            raise AlfiaError(f"{entry.run_dir} and {reference.run_dir} disagree on the label of stay_id "
                             f"{reference.rows.index[disagree][0]!r} ({int(disagree.sum())} stay(s)): not the same cohort")


def _summary_frame(entries: Sequence[RunEntry]) -> pd.DataFrame:
    """One numeric row per run, sorted by AUPRC (best first); ``rank`` is filled by the paired tests."""
    records = []
    for e in entries:
        r = e.result
        record = {"model": e.name, "family": e.family, "is_alfia": e.is_alfia, "run_dir": str(e.run_dir),
                  "n": r["n"], "n_pos": r["n_pos"], "val_auprc": e.val_auprc}
        for metric in (*RANKING_METRICS, *OPERATING_METRICS, *CALIBRATION_METRICS):
            m = r["metrics"][metric]
            record[metric], record[f"{metric}_ci_low"], record[f"{metric}_ci_high"] = m["value"], m["ci_low"], m["ci_high"]
        for metric in CALIBRATION_METRICS:  # the model's own probabilities, before the calibration on val
            record[f"{metric}_raw"] = ((r.get("calibration_before") or {}).get(metric) or {}).get("value")
        record["calibration"] = e.calibration
        record["threshold_f1"] = r["thresholds"]["f1"]
        record["threshold_chosen_on"] = r["thresholds"]["chosen_on"]
        record["warnings"] = " | ".join(r.get("warnings") or [])
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame = frame.sort_values(["auprc", "auroc"], ascending=False, kind="mergesort").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


def significance_ranks(order: Sequence[str], tests: dict[tuple[str, str], dict], metric: str = "auprc") -> dict:
    """rank = 1 + the number of models better on ``metric`` with a paired 95% CI of the difference that excludes
    0. ``order``: best point estimate first; ``tests[(a, b)]``: the paired test of a against b, a before b."""
    better = dict.fromkeys(order, 0)
    for (a, b), test in tests.items():
        d = test[metric]
        if d["ci_low"] is not None and d["ci_low"] > 0:
            better[b] += 1
        elif d["ci_high"] is not None and d["ci_high"] < 0:
            better[a] += 1
    return {name: 1 + better[name] for name in order}


def _paired_rows(tests: Sequence[dict]):
    rows = []
    for t in tests:
        for metric in PAIRED_METRICS:
            d = t[metric]
            rows.append([t["model_a"], t["model_b"], METRIC_LABELS[metric], f"{d['a']:.3f}", f"{d['b']:.3f}",
                         f"{d['difference']:+.3f}", diff_ci_text(d), p_text(d["p_value"])])
    return rows


def _paired_frame(tests: Sequence[dict], second: str) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [{"model": t["model_a"], second: t["model_b"], "metric": metric, "model_value": t[metric]["a"],
          f"{second}_value": t[metric]["b"], "difference": t[metric]["difference"], "ci_low": t[metric]["ci_low"],
          "ci_high": t[metric]["ci_high"], "p_value": t[metric]["p_value"], "n_boot": t["n_boot"], "seed": t["seed"]}
         for t in tests for metric in PAIRED_METRICS],
        columns=["model", second, "metric", "model_value", f"{second}_value", "difference", "ci_low", "ci_high",
                 "p_value", "n_boot", "seed"])


PAIRED_HEADER = ("Model", "vs. best baseline", "Metric", "Model value", "Baseline value", "Difference", "95% CI",
                 "p-value")
PAIRWISE_HEADER = ("Model", "vs.", "Metric", "Model value", "Other value", "Difference", "95% CI", "p-value")

EXTERNAL_HEADER = ("Rank", "Model", "External AUPRC (95% CI)", "Internal test AUPRC (95% CI)", "External AUROC (95% CI)",
                   "Internal test AUROC (95% CI)", "Cal. intercept (95% CI)", "Observed / mean predicted")
SHIFT_HEADER = ("Predictor", "SMD (external − training)", "Missing, training", "Missing, external", "Imputed with",
                "Stays imputed")


def _external_comparisons(entries: Sequence[RunEntry], *, n_boot: int, seed: int, notes: list[str],
                          step: Callable[[str], None]) -> list[dict]:
    """One section per external cohort that any run scored: results side by side, forest plot, shift."""
    from alfia.evaluation import plots
    from alfia.evaluation.external import calibration_in_the_large, external_frame, headline, read_shift
    from alfia.runs import EXTERNAL_SPLIT

    names = sorted({n for e in entries for n in RunLayout.of(e.run_dir).external_names()})
    sections = []
    for name in names:
        have = [e for e in entries if name in RunLayout.of(e.run_dir).external_names()]
        if len(have) < len(entries):
            notes.append(f"external {name}: {len(entries) - len(have)} run(s) did not score it "
                         f"({', '.join(e.name for e in entries if e not in have)}); compared among the rest")
        results, ids, flagged = {}, None, {}
        for e in have:
            frame, _ = calibrate_on_val(external_frame(e.run_dir, name), calibrated=e.calibrated)
            rows = frame.loc[frame[SPLIT_COLUMN] == EXTERNAL_SPLIT]
            these = set(rows[ID_COLUMN])
            if ids is None:
                ids = these
            elif these != ids:
                raise AlfiaError(f"{e.run_dir}: external/{name} holds other stays than the other runs' "
                                 f"external/{name}; score the same cohort file with every run")
            res = score_split(frame, split=EXTERNAL_SPLIT, n_boot=n_boot, seed=seed,
                              source=str(RunLayout.of(e.run_dir).external(name).predictions))
            res["calibration_in_the_large"] = calibration_in_the_large(rows["label"], rows["prob"])
            results[e.name] = res
            for w in res.get("warnings") or []:
                flagged.setdefault(w, []).append(e.name)
            step(f"evaluated {e.name} on external {name}")
        notes.extend(f"{WARNING_MARK} external {name}: {w}" + ("" if len(names) == len(have) else f" ({', '.join(names)})")
                     for w, names in flagged.items())
        order = sorted(results, key=lambda n: (-results[n]["metrics"]["auprc"]["value"],
                                               -results[n]["metrics"]["auroc"]["value"]))
        by_name = {e.name: e for e in have}
        table_rows, records = [], []
        for rank, n in enumerate(order, start=1):
            ext, internal = results[n], by_name[n].result
            citl = ext["calibration_in_the_large"]
            table_rows.append([str(rank), n + (" ★" if by_name[n].is_alfia else ""),
                               ci_text(ext["metrics"]["auprc"]), ci_text(internal["metrics"]["auprc"]),
                               ci_text(ext["metrics"]["auroc"]), ci_text(internal["metrics"]["auroc"]),
                               ci_text(ext["metrics"]["calibration_intercept"]),
                               f"{citl['observed_rate']:.3f} / {citl['mean_predicted']:.3f}"])
            record = {"external": name, "rank": rank, "model": n, "family": by_name[n].family,
                      "is_alfia": by_name[n].is_alfia, "n": ext["n"], "n_pos": ext["n_pos"]}
            for metric in (*RANKING_METRICS, *CALIBRATION_METRICS):
                m = ext["metrics"][metric]
                record[metric], record[f"{metric}_ci_low"], record[f"{metric}_ci_high"] = (
                    m["value"], m["ci_low"], m["ci_high"])
                record[f"internal_{metric}"] = internal["metrics"][metric]["value"]
            record.update({f"citl_{k}": v for k, v in citl.items()})
            records.append(record)

        def triple(source, metric):
            ms = [source(n)["metrics"][metric] for n in order]
            return ([m["value"] for m in ms], [m["ci_low"] if m["ci_low"] is not None else m["value"] for m in ms],
                    [m["ci_high"] if m["ci_high"] is not None else m["value"] for m in ms])

        highlight = [by_name[n].is_alfia for n in order]
        pngs = {f"forest_external_{name}": plots.figure_png(plots.internal_external_forest_figure(
            order, triple(lambda n: by_name[n].result, "auprc"), triple(lambda n: results[n], "auprc"),
            highlight, title=f"AUPRC: internal test vs external {name}"))}
        shift = next((s for s in (read_shift(e.run_dir, name) for e in have) if s is not None), None)
        shift_rows = []
        if shift is not None:
            pngs[f"shift_{name}"] = plots.figure_png(plots.shift_figure(shift, title=f"Training cohort vs {name}"))
            imputed = {r["variable"]: r for r in shift["imputed"]}
            ranked = sorted(shift["predictors"], key=lambda r: (r["smd"] is None, -abs(r["smd"] or 0.0)))
            for r in ranked:
                imp = imputed.get(r["variable"])
                smd = "not measured (or < 10 values)" if r["smd"] is None else (
                    f"{r['smd']:+.2f}" + (f" ({r['smd_level']})" if r.get("smd_level") else ""))
                shift_rows.append([r["variable"], smd, f"{r['missing_train']:.1%}", f"{r['missing_external']:.1%}",
                                   "—" if imp is None else (imp["fill_rule"] if imp["fill"] is None
                                                            else f"{imp['fill']} ({imp['fill_rule']})"),
                                   "—" if imp is None else f"{imp['share_of_stays']:.1%}"])
        step(f"drew external {name}")
        first = results[order[0]]
        sections.append({"name": name, "n": first["n"], "n_pos": first["n_pos"], "prevalence": first["prevalence"],
                         "order": order, "highlight": highlight, "table_rows": table_rows,
                         "frame": pd.DataFrame.from_records(records), "pngs": pngs, "shift": shift,
                         "shift_rows": shift_rows, "headline": headline(shift) if shift else None,
                         "results": results})
    return sections


def _external_html(x: dict) -> list[str]:
    name = html.escape(x["name"])
    shift = x["shift"]
    parts = [f"<h2>External cohort {name}: {x['n']} stays, {x['n_pos']} deaths</h2>",
             "<p class=\"note\">Every model was trained and selected on the training cohort's train/val splits "
             "only, then scored on the whole external cohort (its split ignored). Thresholds and ensemble weights "
             "come from internal validation; the external labels were read only after scoring.</p>",
             html_table(EXTERNAL_HEADER, x["table_rows"], x["highlight"]),
             "<div class=\"figs\">", html_image(x["pngs"][f"forest_external_{x['name']}"], f"forest plot {name}",
                                          "AUPRC with 95% CI: grey squares internal test split, blue circles "
                                          "external cohort (ALFIA runs red)."), "</div>"]
    if shift is not None:
        rates = (f"In-hospital mortality: {shift['outcome_rate_train']:.1%} in training, "
                 f"{shift['outcome_rate_external']:.1%} in {x['name']}. " if shift.get("outcome_rate_external")
                 is not None else "")
        parts += [f"<h3>How {name} differs from the training cohort</h3>",
                  f"<p class=\"meta\">{html.escape(rates + (x['headline'] or ''))}. Calibration in the large per "
                  "model: observed / mean predicted and the intercept column above (0 is ideal; negative = the "
                  "model over-predicts deaths here).</p>",
                  "<div class=\"figs\">", html_image(x["pngs"][f"shift_{x['name']}"], f"shift {name}",
                                               "Left: standardised mean difference of each predictor (red: |SMD| "
                                               "> 0.1, a notable difference; categorical: the level that differs "
                                               "most). Right: share of stays without a value, before imputation."),
                  "</div>", html_table(SHIFT_HEADER, x["shift_rows"], first_left=True)]
    return parts
def _subgroup_source(entries: Sequence[RunEntry], cohort: str | os.PathLike | None) -> Path | None:
    """``cohort`` if given, else the first data file a compared run records that still exists."""
    from alfia.evaluation.subgroups import resolve_subgroup_source

    if cohort is not None:
        return resolve_subgroup_source({}, cohort, Path("."))
    for e in entries:
        found = resolve_subgroup_source(read_config(e.run_dir), None, e.run_dir)
        if found is not None:
            return found
    return None


DCA_NOTE = ("Decision-curve analysis (Vickers & Elkin 2006): net benefit = TP/n − FP/n · p_t/(1 − p_t) when every "
            "stay with predicted risk ≥ p_t is treated; a model helps at p_t where it beats both treat-all and "
            "treat-none.")
SUBGROUP_NOTE = ("AUROC with its 95% CI within each subgroup (stratified bootstrap within the subgroup); subgroup "
                 "columns joined from the cohort by stay_id. Sensitivity, specificity, observed and predicted "
                 "mortality per subgroup are in subgroups.csv and comparison.json. A dash: the subgroup holds a "
                 f"single outcome class. {WARNING_MARK}: fewer than {MIN_EVENTS} deaths in the subgroup.")


def _threshold_text(result: dict) -> str:
    t = result["thresholds"]
    return f"{t['f1']:.3f} ({t['chosen_on']})"


def _subgroup_tables(by_name: dict[str, RunEntry], order: Sequence[str]) -> list[tuple[str, list, list]]:
    """(title, header, rows) per subgroup attribute: one row per level, one AUROC [CI] column per model."""
    from alfia.evaluation.subgroups import SUBGROUP_LABELS

    blocks = {n: by_name[n].result.get("subgroups") for n in order}
    first = next((b for b in blocks.values() if b and b.get("groups")), None)
    if first is None:
        return []
    tables = []
    for attribute, entries in first["groups"].items():
        header = ["Level", "Stays", "Deaths", *[f"{n} AUROC" for n in order]]
        rows = []
        for i, entry in enumerate(entries):
            cells = [ci_text(blocks[n]["groups"][attribute][i]["metrics"]["auroc"]) for n in order]
            level = entry["level"] + (f" {WARNING_MARK}" if entry.get("warning") else "")
            rows.append([level, str(entry["n"]), str(entry["n_pos"]), *cells])
        column = first["columns"].get(attribute)
        tables.append((f"{SUBGROUP_LABELS.get(attribute, attribute)} (column {column})", header, rows))
    return tables


# What a run's config.json says of its training, in this order (dotted: a key of a section); the first found.
SETTINGS_KEYS = (
    "recipe", "model.backbone", "model.train_layers", "model.finetune", "model.lora_r", "model.pooler",
    "model.max_length", "train.epochs", "train.head_epochs", "train.lr", "train.batch_size", "train.max_train_rows",
    "train.calibration", "train.seed", "library", "engine", "profile", "selected_hyperparameters", "seed",
    "n_rows", "data.n_rows",
)
SETTINGS_MAX_CHARS = 400


def training_settings(config: dict) -> str:
    """One line of the settings a run was trained with, from its config.json (``SETTINGS_KEYS``)."""
    parts = []
    for key in SETTINGS_KEYS:
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or node == {} or node == "":
            continue
        value = json.dumps(node, separators=(",", ":"), default=str) if isinstance(node, (dict, list)) else str(node)
        parts.append(f"{key.split('.')[-1]}={value}")
    text = "; ".join(parts) or "not recorded in config.json"
    return text if len(text) <= SETTINGS_MAX_CHARS else text[: SETTINGS_MAX_CHARS - 1] + "…"


def _data_sources(entries: Sequence[RunEntry], subgroup_source: Path | None) -> list[dict]:
    """The provenance of every distinct data file the runs record (or --cohort), from the manifests."""
    from alfia.evaluation.subgroups import data_provenance, resolve_subgroup_source

    paths = [subgroup_source] if subgroup_source is not None else []
    for e in entries:
        found = resolve_subgroup_source(e.config, None, e.run_dir)
        if found is not None:
            paths.append(found)
    seen, out = set(), []
    for path in paths:
        key = Path(path).resolve()
        if key not in seen:
            seen.add(key)
            out.append(data_provenance(path))
    return out


def _data_source_text(sources: Sequence[dict]) -> str:
    if not sources:
        return ("Data source: not recorded (no compared run records a data file that still exists; pass the cohort "
                "with --cohort).")
    lines = []
    for s in sources:
        if s["source"] is None:
            lines.append(f"Data: `{s['path']}` ({s['note']}).")
            continue
        lines.append(f"Data: `{s['path']}`, source **{s['source']}** (variant {s['variant'] or '?'}"
                     + (f", cohort file `{s['cohort_file']}`" if s["cohort_file"] else "")
                     + (f", SHA-256 {s['content_sha256'][:12]}…" if s["content_sha256"] else "") + ").")
        if s["synthetic"]:
            lines.append(f"**These are synthetic data** ({s['note']}).")
    return " ".join(lines)


def _table1(source: Path | None) -> pd.DataFrame | None:
    """Table 1 (survived / died / overall) of the cohort the subgroups come from, when its variant is known."""
    if source is None:
        return None
    from alfia.cohorts.describe import describe_cohort
    from alfia.cohorts.io import infer_variant, read_table_or_csv
    from alfia.cohorts.schema import OUTCOME_COLUMN

    df, manifest = read_table_or_csv(source)
    if OUTCOME_COLUMN not in df.columns:
        return None
    try:
        variant = infer_variant(df, manifest, source)
    except AlfiaError:
        return None
    table = describe_cohort(df, variant)
    return table if len(table) else None


@dataclass
class Comparison:
    """What ``alfia compare`` found: the runs scored on the same stays, their paired tests and ranks, and the
    sections of the report. :meth:`render_md`, :meth:`render_html` and :meth:`write` turn it into files;
    ``comparison["key"]`` reads :meth:`to_dict` (comparison.json) plus ``table`` and ``outputs``."""

    split: str
    n_boot: int
    seed: int
    entries: list[RunEntry]           # in table order: AUPRC, best first
    summary: pd.DataFrame             # comparison.csv
    ranks: dict[str, int]
    pairwise: list[dict]              # every pair, the higher AUPRC first
    best_baseline: str | None         # the non-ALFIA run best on validation AUPRC
    paired_tests: list[dict]          # each ALFIA run against best_baseline
    notes: list[str]
    warnings: list[str]
    externals: list[dict]
    subgroup_source: Path | None
    data_sources: list[dict]
    table1: pd.DataFrame | None
    figures: dict[str, bytes]
    created: str = field(default_factory=lambda: _dt.datetime.now().isoformat(timespec="seconds"))
    outputs: dict[str, str] = field(default_factory=dict)

    # -- what every section reads -----------------------------------------------------------------
    @property
    def by_name(self) -> dict[str, RunEntry]:
        return {e.name: e for e in self.entries}

    @property
    def order(self) -> list[str]:
        return [e.name for e in self.entries]

    @property
    def first(self) -> dict:
        return self.entries[0].result

    n = property(lambda self: self.first["n"])
    n_pos = property(lambda self: self.first["n_pos"])
    prevalence = property(lambda self: self.first["prevalence"])

    def to_dict(self) -> dict:
        """comparison.json."""
        return {
            "split": self.split, "n": self.n, "n_pos": self.n_pos, "prevalence": self.prevalence,
            "n_boot": self.n_boot, "seed": self.seed, "n_runs": len(self.entries), "created": self.created,
            "sort_metric": "auprc", "rank_rule": RANK_RULE, "best_baseline": self.best_baseline,
            "best_baseline_chosen_on": "val",
            "runs": [{"model": e.name, "family": e.family, "kind": e.kind.value, "is_alfia": e.is_alfia,
                      "rank": self.ranks[e.name], "val_auprc": e.val_auprc, "calibration": e.calibration,
                      "training_settings": training_settings(e.config), "run_dir": str(e.run_dir),
                      "result": e.result} for e in self.entries],
            "paired_tests": self.paired_tests, "pairwise_tests": self.pairwise, "notes": self.notes,
            "warnings": self.warnings, "data_sources": self.data_sources,
            "table1": None if self.table1 is None else self.table1.to_dict(orient="records"),
            "external": {x["name"]: {"n": x["n"], "n_pos": x["n_pos"], "prevalence": x["prevalence"],
                                     "order": x["order"], "shift": x["shift"], "headline": x["headline"],
                                     "results": x["results"]} for x in self.externals},
        }

    def __getitem__(self, key: str):
        if key == "table":
            return self.summary
        if key == "outputs":
            return self.outputs
        return self.to_dict()[key]

    def _rows(self, metrics: Sequence[str], result_of=lambda e: e.result["metrics"]) -> list[list[str]]:
        return [[str(self.ranks[e.name]), e.name + (" ★" if e.is_alfia else ""),
                 *[ci_text(result_of(e).get(m)) for m in metrics]] for e in self.entries]

    def _tables(self) -> dict[str, tuple[list[str], list[list[str]]]]:
        """(header, rows) of every table the Markdown and HTML pages share."""
        ranked_on = [*HEADLINE_METRICS]
        main = (["Rank", "Model", *[f"{METRIC_LABELS[m]} (95% CI)" for m in ranked_on], "Val AUPRC"],
                [row + ["—" if e.val_auprc is None else f"{e.val_auprc:.3f}"]
                 for row, e in zip(self._rows(ranked_on), self.entries)])
        op = (["Rank", "Model", "Threshold (chosen on)", *[METRIC_LABELS[m] for m in OPERATING_METRICS]],
              [[row[0], row[1], _threshold_text(e.result), *row[2:]]
               for row, e in zip(self._rows(OPERATING_METRICS), self.entries)])
        cal = (["Rank", "Model", "Calibrated with", *[METRIC_LABELS[m] for m in CALIBRATION_METRICS]],
               [[row[0], row[1], e.calibration, *row[2:]] for row, e in zip(self._rows(CALIBRATION_METRICS), self.entries)])
        raw = (["Rank", "Model", *[f"{METRIC_LABELS[m]}, raw" for m in CALIBRATION_METRICS]],
               self._rows(CALIBRATION_METRICS, lambda e: e.result.get("calibration_before") or {}))
        optimal = (["Rank", "Model", *[METRIC_LABELS[m] + " (test-optimal)" for m in TEST_OPTIMAL_METRICS]],
                   self._rows(TEST_OPTIMAL_METRICS))
        dca = (["Model", "Net benefit above treat-all and treat-none at p_t"],
               [[e.name, useful_thresholds_text(e.result["decision_curve"])] for e in self.entries])
        runs = (["Model", "Kind", "Calibration", "Training settings (config.json)", "Run directory"],
                [[e.name, e.family, e.calibration, training_settings(e.config), str(e.run_dir)] for e in self.entries])
        return {"main": main, "operating": op, "calibration": cal, "raw": raw, "optimal": optimal, "dca": dca,
                "runs": runs}

    def _method(self) -> str:
        return (f"95% CIs: stratified percentile bootstrap ({self.n_boot} resamples, seed {self.seed}; deaths and "
                "survivors resampled separately). Paired tests score both models on the same resamples; the p-value "
                "is twice the share of resampled differences on the far side of 0 (two-sided). "
                f"{RANK_RULE} ★ marks ALFIA runs. {WARNING_MARK}: a small-sample warning (below). A zero-width CI "
                "is not a result and reads “— (zero-width CI)”.")

    def _intro(self) -> str:
        return (f"{self.n} stays, {self.n_pos} deaths (prevalence {self.prevalence:.3f}); {len(self.entries)} runs.")

    # -- renderers --------------------------------------------------------------------------------
    def render_md(self) -> str:
        t = self._tables()
        md = [f"# Model comparison — {self.split} split", "", f"{self._intro()} {self._method()}", "",
              _data_source_text(self.data_sources), ""]
        md += [f"- {WARNING_MARK} {w}" for w in self.warnings] + ([""] if self.warnings else [])
        md += ["## Discrimination (sorted by AUPRC)", "", markdown_table(*t["main"]), "",
               "## Operating point (threshold chosen on val)", "", THRESHOLD_NOTE, "", markdown_table(*t["operating"]),
               "", "## Calibration", "", CALIBRATION_NOTE, "", markdown_table(*t["calibration"]), "",
               "Before calibration (each model's own probabilities):", "", markdown_table(*t["raw"]), "",
               "## Decision curve", "", DCA_NOTE, "", markdown_table(*t["dca"]), ""]
        subgroup_tables = _subgroup_tables(self.by_name, self.order)
        if subgroup_tables:
            md += ["## Subgroups", "", SUBGROUP_NOTE + f" Source: `{self.subgroup_source}`.", ""]
            for title, header, rows in subgroup_tables:
                md += [f"### {title}", "", markdown_table(header, rows), ""]
        if self.paired_tests:
            md += [f"## Paired bootstrap tests against the best baseline ({self.best_baseline}, best on validation)",
                   "", markdown_table(PAIRED_HEADER, _paired_rows(self.paired_tests)), ""]
        if self.pairwise:
            md += ["## Paired bootstrap tests between every pair of models", "",
                   markdown_table(PAIRWISE_HEADER, _paired_rows(self.pairwise)), ""]
        for x in self.externals:
            md += [f"## External cohort {x['name']}: {x['n']} stays, {x['n_pos']} deaths (scored whole)", "",
                   f"Thresholds and ensemble weights come from internal validation; the external labels are read "
                   f"only after scoring. Shift: {x['headline'] or 'no shift report'}.", "",
                   markdown_table(EXTERNAL_HEADER, x["table_rows"]), ""]
            if x["shift_rows"]:
                md += [markdown_table(SHIFT_HEADER, x["shift_rows"]), ""]
        md += ["## Test-optimal F1 and F2 (not operating points)", "", TEST_OPTIMAL_NOTE, "",
               markdown_table(*t["optimal"]), ""]
        if self.table1 is not None:
            from alfia.cohorts.describe import to_markdown

            md += ["## Table 1: the cohort", "", f"Source: `{self.subgroup_source}`.", "", to_markdown(self.table1)]
        md += [f"- {n}" for n in self.notes] + ([""] if self.notes else [])
        md += ["## Runs", ""] + [f"- {e.name} ({e.family}): `{e.run_dir}`; {training_settings(e.config)}"
                                 for e in self.entries] + [""]
        return "\n".join(md)

    def render_html(self) -> str:
        t = self._tables()
        pngs, split = self.figures, html.escape(self.split)
        highlight = [e.is_alfia for e in self.entries]
        source = _data_source_text(self.data_sources)
        synthetic = any(s["synthetic"] for s in self.data_sources)
        parts = [
            f"<h1>Model comparison — {split} split</h1>",
            f"<p class=\"meta\">{self._intro()} · generated {html.escape(self.created)} by <code>alfia compare</code>"
            "</p>",
            f"<p class=\"{'warn' if synthetic else 'note'}\">{_md_inline(source)}</p>",
            f"<p class=\"note\">{html.escape(self._method())}</p>",
        ]
        parts += [f"<p class=\"warn\">{WARNING_MARK} {html.escape(w)}</p>" for w in self.warnings]
        parts += ["<h2>Discrimination, sorted by AUPRC</h2>", html_table(*t["main"], highlight)]
        if self.paired_tests:
            parts += [f"<h2>ALFIA against the best baseline ({html.escape(self.best_baseline)}): paired bootstrap</h2>",
                      "<p class=\"meta\">The best baseline is the non-ALFIA run with the highest AUPRC on validation "
                      "(the test split chooses nothing).</p>",
                      html_table(PAIRED_HEADER, _paired_rows(self.paired_tests), first_left=True)]
        parts += [f"<p class=\"note\">{html.escape(n)}</p>" for n in self.notes]
        parts += ["<h2>AUPRC with 95% CI</h2><div class=\"figs\">",
                  html_image(pngs["forest_auprc"], "forest plot of AUPRC", "Point estimate and 95% stratified "
                             "bootstrap CI; ALFIA runs in red."), "</div>",
                  "<h2>ROC and precision-recall curves</h2><div class=\"figs\">",
                  html_image(pngs["roc"], "ROC curves", "ROC curves overlaid."),
                  html_image(pngs["pr"], "precision-recall curves", "Precision-recall curves; dotted line: prevalence."),
                  "</div>",
                  "<h2>Operating point (threshold chosen on val)</h2>",
                  f"<p class=\"meta\">{html.escape(THRESHOLD_NOTE)}</p>", html_table(*t["operating"], highlight),
                  "<h2>Calibration</h2>", f"<p class=\"meta\">{html.escape(CALIBRATION_NOTE)}</p>",
                  html_table(*t["calibration"], highlight),
                  "<p class=\"meta\">Before calibration (each model's own probabilities):</p>",
                  html_table(*t["raw"], highlight), "<div class=\"figs\">",
                  html_image(pngs["calibration"], "calibration curves", "Reliability diagram over 10 equal-width bins "
                             "(the ECE's; bins with fewer than 10 stays not drawn) and the distribution of predicted "
                             "probabilities, both drawn on the range of the predictions. Slope 1 and intercept 0 are "
                             "ideal. Shaded: Wilson 95% interval of each bin's observed mortality."), "</div>",
                  "<h2>Decision curve</h2>", f"<p class=\"meta\">{html.escape(DCA_NOTE)}</p><div class=\"figs\">",
                  html_image(pngs["decision_curve"], "decision curve", "Net benefit per stay against the threshold "
                             "probability; dashed: treat all; dotted: treat none."),
                  html_table(*t["dca"], first_left=True), "</div>"]
        subgroup_tables = _subgroup_tables(self.by_name, self.order)
        if subgroup_tables:
            parts += ["<h2>Subgroups</h2>",
                      f"<p class=\"meta\">{html.escape(SUBGROUP_NOTE)} Source: <code>"
                      f"{html.escape(str(self.subgroup_source))}</code>.</p>"]
            for title, header, rows in subgroup_tables:
                parts += [f"<h3>{html.escape(title)}</h3>", html_table(header, rows, first_left=True)]
        if self.pairwise:
            parts += ["<h2>Paired bootstrap tests between every pair of models</h2>",
                      html_table(PAIRWISE_HEADER, _paired_rows(self.pairwise), first_left=True)]
        parts += [part for x in self.externals for part in _external_html(x)]
        parts += ["<h2>Test-optimal F1 and F2 (not operating points)</h2>",
                  f"<p class=\"meta\">{html.escape(TEST_OPTIMAL_NOTE)}</p>", html_table(*t["optimal"], highlight)]
        if self.table1 is not None:
            parts += ["<h2>Table 1: the cohort</h2>",
                      f"<p class=\"meta\">Source: <code>{html.escape(str(self.subgroup_source))}</code>.</p>",
                      html_table(list(self.table1.columns), self.table1.astype(str).values.tolist(), first_left=True)]
        parts += ["<h2>Runs</h2>", html_table(*t["runs"], first_left=True)]
        return html_page(f"ALFIA model comparison — {self.split}", parts)

    def write(self, out: str | os.PathLike) -> dict[str, Path]:
        """comparison.md, comparison.csv, comparison.json, paired_tests.csv, pairwise_tests.csv, subgroups.csv,
        decision_curve.csv, external_<name>.csv, report.html and figures/*.png, each atomically."""
        from alfia.evaluation.subgroups import subgroup_frame

        out = Path(out)
        by_name, order = self.by_name, self.order
        written: dict[str, Path] = {}
        for name, png in self.figures.items():
            written[name] = write_atomic(out / "figures" / f"{name}.png", lambda p, png=png: p.write_bytes(png))
        subgroup_csv = pd.concat([subgroup_frame(by_name[n].result["subgroups"]).assign(model=n) for n in order
                                  if by_name[n].result.get("subgroups", {}).get("groups")] or [pd.DataFrame()])
        written["subgroups_csv"] = write_text_atomic(out / "subgroups.csv", subgroup_csv.to_csv(index=False))
        dca = by_name[order[0]].result["decision_curve"]
        dca_frame = pd.DataFrame({"threshold": dca["thresholds"], "treat_all": dca["treat_all"],
                                  **{n: by_name[n].result["decision_curve"]["net_benefit"] for n in order}})
        written["decision_curve_csv"] = write_text_atomic(out / "decision_curve.csv", dca_frame.to_csv(index=False))
        written["csv"] = write_text_atomic(out / "comparison.csv", self.summary.to_csv(index=False))
        written["paired_csv"] = write_text_atomic(out / "paired_tests.csv",
                                                  _paired_frame(self.paired_tests, "baseline").to_csv(index=False))
        written["pairwise_csv"] = write_text_atomic(out / "pairwise_tests.csv",
                                                    _paired_frame(self.pairwise, "other").to_csv(index=False))
        for x in self.externals:
            written[f"external_{x['name']}_csv"] = write_text_atomic(out / f"external_{x['name']}.csv",
                                                                     x["frame"].to_csv(index=False))
        written["markdown"] = write_text_atomic(out / "comparison.md", self.render_md())
        written["json"] = write_json_atomic(out / "comparison.json", self.to_dict())
        written["html"] = write_text_atomic(out / "report.html", self.render_html())
        self.outputs = {k: str(v) for k, v in written.items()}
        return written


def _md_inline(text: str) -> str:
    """The data-source sentence's Markdown (`code`, **bold**) as HTML, escaped."""
    import re

    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


RANK_RULE = ("Rank: 1 + the number of models whose AUPRC is higher with a paired 95% CI of the difference that "
             "excludes 0; models no paired test separates share a rank.")
THRESHOLD_NOTE = ("Thresholds for the operating-point metrics are the max-F1 thresholds chosen on each run's "
                  "validation rows and applied unchanged to the compared split. The test-optimal F1/F2 (a threshold "
                  "chosen on the compared split itself) are at the end of the report, apart from the results.")
CALIBRATION_NOTE = ("Every model is calibrated on its own validation rows the same way: an ALFIA run by its own "
                    "calibrator (calibration.json, Platt by default), every other run by a Platt map of its logit "
                    "fitted here on its val rows. Ranking (AUROC, AUPRC) and the val-chosen operating points do not "
                    "change; the calibration metrics are shown after and before.")
TEST_OPTIMAL_NOTE = ("Best F1 and F2 over every threshold of the compared split: the threshold is chosen on the very "
                     "rows scored, so these are optimistic and no operating point; shown only for comparison with "
                     "papers that report them.")


def build_comparison(run_paths: Sequence[str | os.PathLike], *, split: str = "test", n_boot: int = 1000,
                     seed: int = 42, cohort: str | os.PathLike | None = None,
                     on_progress: Callable[[str], None] | None = None) -> Comparison:
    """Score ``run_paths`` (run dirs or folders of runs) on the same stays of ``split``; nothing written.

    Subgroup columns (sex, age band, ICU unit) and Table 1 come from ``cohort``, default the data file the first
    run records. Raises AlfiaError when the runs do not share the same stays in ``split``.
    """
    from alfia.evaluation import plots
    from alfia.evaluation.curves import calibration_band, decision_curve
    from alfia.evaluation.subgroups import subgroup_attributes, subgroup_metrics

    step = on_progress or (lambda _msg: None)
    entries = _load_runs(find_run_dirs(run_paths), split)
    _check_same_stays(entries, split)
    subgroup_source = _subgroup_source(entries, cohort)
    attributes = subgroup_attributes(subgroup_source) if subgroup_source is not None else None
    for e in entries:
        e.result = score_split(e.predictions, split=split, n_boot=n_boot, seed=seed,
                               source=str(RunLayout.of(e.run_dir).predictions))
        y, prob = e.rows["label"].to_numpy(), e.rows["prob"].to_numpy()
        e.result["decision_curve"] = decision_curve(y, prob)
        e.result["calibration_curve"] = calibration_band(y, prob)
        if attributes is not None:
            e.result["subgroups"] = subgroup_metrics(e.rows.reset_index(), attributes, e.result["thresholds"]["f1"],
                                                     n_boot=n_boot, seed=seed, source=str(subgroup_source))
        step(f"evaluated {e.name}")
    summary = _summary_frame(entries)
    by_name = {e.name: e for e in entries}
    order = list(summary["model"])
    entries = [by_name[n] for n in order]

    # One bootstrap per model on the same resamples; every pair's test is a difference of two of them.
    reference = entries[0].rows
    resamples = PairedResamples(reference["label"].to_numpy(),
                                {n: by_name[n].rows["prob"].reindex(reference.index).to_numpy() for n in order},
                                n_boot=n_boot, seed=seed)
    tests = {(a, b): {"model_a": a, "model_b": b, "split": split, **resamples.test(a, b)}
             for i, a in enumerate(order) for b in order[i + 1:]}
    step(f"paired tests of {len(tests)} pair(s)")
    ranks = significance_ranks(order, tests)
    summary["rank"] = [ranks[n] for n in order]

    notes: list[str] = []
    baselines = [n for n in order if not by_name[n].is_alfia]
    alfia_runs = [n for n in order if by_name[n].is_alfia]
    with_val = [n for n in baselines if by_name[n].val_auprc is not None]
    best_baseline = max(with_val, key=lambda n: by_name[n].val_auprc) if with_val else None  # first on ties
    paired = []
    if best_baseline and alfia_runs:
        paired = [{"model_a": n, "model_b": best_baseline, "split": split, **resamples.test(n, best_baseline)}
                  for n in alfia_runs]
    elif not alfia_runs:
        notes.append("No ALFIA run among the compared runs (config.json model_type alfia, or model_family "
                     "alfia-boost/alfia-nn): no test against a best baseline; the paired tests between every pair "
                     "of models are below (pairwise_tests.csv).")
    elif baselines and not with_val:
        notes.append("No baseline has val rows of both classes, so none is best on validation: no paired test "
                     "against a best baseline.")
    else:
        notes.append("No baseline among the compared runs: no paired test against a best baseline.")
    if split == "val":
        notes.append("Comparing on val: the calibrators and thresholds were fitted on these same rows, so "
                     "calibration and the operating points are optimistic.")
    uncalibrated = [e.name for e in entries if e.calibration.startswith("not calibrated")]
    if uncalibrated:
        notes.append(f"Not calibrated on val (reported raw): {', '.join(uncalibrated)}.")

    curves = [plots.Curve(n, by_name[n].rows["label"].reindex(reference.index).to_numpy(),
                          by_name[n].rows["prob"].reindex(reference.index).to_numpy(), by_name[n].is_alfia)
              for n in order]
    figs = {
        "forest_auprc": plots.forest_figure(order, summary["auprc"], summary["auprc_ci_low"], summary["auprc_ci_high"],
                                            list(summary["is_alfia"]), title=f"AUPRC on {split} with 95% CI"),
        "roc": plots.roc_figure(curves, f"ROC curves ({split})"),
        "pr": plots.pr_figure(curves, f"Precision-recall curves ({split})"),
        "calibration": plots.calibration_figure(curves, f"Calibration ({split}, calibrated on val)"),
        "decision_curve": plots.decision_curve_figure(curves, f"Decision curve ({split})"),
    }
    pngs = {name: plots.figure_png(fig) for name, fig in figs.items()}
    step("drew figures")
    externals = _external_comparisons(entries, n_boot=n_boot, seed=seed, notes=notes, step=step)
    for section in externals:
        pngs.update(section["pngs"])

    if attributes is None:
        notes.append("No subgroup tables: no compared run records a cohort file that still exists; pass one "
                     "with --cohort.")
    elif not _subgroup_tables(by_name, order):
        notes.append(f"No subgroup tables: {subgroup_source} has none of the sex, age or ICU-unit columns.")
    if any(by_name[n].result["thresholds"]["chosen_on"] != "val" for n in order):
        notes.append("Some runs have no usable val rows: their thresholds were chosen on the compared split itself.")
    warnings = _warnings(entries)
    return Comparison(split=split, n_boot=n_boot, seed=seed, entries=entries, summary=summary, ranks=ranks,
                      pairwise=list(tests.values()), best_baseline=best_baseline, paired_tests=paired, notes=notes,
                      warnings=warnings, externals=externals, subgroup_source=subgroup_source,
                      data_sources=_data_sources(entries, subgroup_source), table1=_table1(subgroup_source),
                      figures=pngs)


def _warnings(entries: Sequence[RunEntry]) -> list[str]:
    """Every small-sample warning of the compared results, each once, naming the models it concerns."""
    found: dict[str, list[str]] = {}
    for e in entries:
        for w in e.result.get("warnings") or []:
            found.setdefault(w, []).append(e.name)
        for entries_of in ((e.result.get("subgroups") or {}).get("groups") or {}).values():
            for entry in entries_of:
                if entry.get("warning"):
                    found.setdefault(entry["warning"], []).append(e.name)
    shared = len(entries)
    return [w if len(names) == shared else f"{w} ({', '.join(names)})" for w, names in found.items()]


def compare_runs(run_paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, split: str = "test",
                 n_boot: int = 1000, seed: int = 42, cohort: str | os.PathLike | None = None,
                 on_progress: Callable[[str], None] | None = None) -> Comparison:
    """:func:`build_comparison` written into ``out`` (:meth:`Comparison.write`): comparison.md, comparison.csv,
    comparison.json, paired_tests.csv, pairwise_tests.csv, subgroups.csv, decision_curve.csv, report.html and
    figures/{forest_auprc,roc,pr,calibration,decision_curve}.png, each atomically. Returns the Comparison."""
    comparison = build_comparison(run_paths, split=split, n_boot=n_boot, seed=seed, cohort=cohort,
                                  on_progress=on_progress)
    comparison.write(out)
    return comparison
