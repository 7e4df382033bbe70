"""``alfia compare``: many run directories, one report.

Every run is scored by the same :func:`~alfia.evaluation.report.evaluate_predictions` on the same test
stays (checked), with the same bootstrap seed, so all models see the same resamples. The report holds
one table sorted by AUPRC (Markdown, CSV, HTML), a forest plot of AUPRC, overlaid ROC, PR and
calibration curves, and paired bootstrap tests of the ALFIA runs against the best baseline.

Runs that scored external cohorts (``RUN_DIR/external/<name>/``) add, per external cohort, a table of
internal test against external results, a forest plot of both, and the shift report (covariate
shift, missingness, outcome rates, calibration in the large, imputed variables).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.atomic import write_atomic, write_json_atomic, write_text_atomic
from alfia.cohorts.schema import ID_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.evaluation.bootstrap import paired_compare
from alfia.evaluation.report import CALIBRATION_METRICS, RANKING_METRICS, score_split
from alfia.runs import RunLayout, read_config, read_predictions

ALFIA_FAMILIES = ("alfia", "alfia-boost", "alfia-nn")
METRIC_LABELS = {
    "auprc": "AUPRC", "auroc": "AUROC", "best_f1": "Best F1", "best_f2": "Best F2", "f1": "F1 @ val thr.",
    "f2": "F2 @ val thr.", "sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV",
    "brier": "Brier", "calibration_slope": "Cal. slope", "calibration_intercept": "Cal. intercept", "ece": "ECE",
}
OPERATING_METRICS = ("f1", "sensitivity", "specificity", "ppv", "npv")


@dataclass
class RunEntry:
    run_dir: Path
    name: str
    family: str
    is_alfia: bool
    predictions: pd.DataFrame  # all rows (val rows choose the thresholds)
    rows: pd.DataFrame         # the compared split only, indexed by stay_id
    result: dict | None = None


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
        inner = sorted(p.parent for p in path.rglob("predictions.parquet")
                       if not any(part.startswith(".") for part in p.relative_to(path).parts)
                       and not RunLayout.of(p.parent).is_external)
        if not inner:
            raise AlfiaError(f"{path}: holds no run directory (no predictions.parquet in it or below it)")
        found.extend(inner)
    unique, seen = [], set()
    for run in found:
        key = run.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(run)
    return unique


def _load_runs(run_dirs: Sequence[Path], split: str) -> list[RunEntry]:
    entries = []
    for run_dir in run_dirs:
        layout = RunLayout.of(run_dir)
        pred = read_predictions(layout.predictions)
        rows = pred.loc[pred[SPLIT_COLUMN] == split]
        if rows.empty:
            raise AlfiaError(f"{layout.predictions}: no rows in split {split!r}")
        config = read_config(run_dir)
        name = str(config.get("model_name") or Path(run_dir).resolve().name)
        family = str(config.get("model_family") or "")
        is_alfia = family.lower() in ALFIA_FAMILIES or name.lower().startswith("alfia")
        entries.append(RunEntry(Path(run_dir), name, family, is_alfia, pred, rows.set_index(ID_COLUMN)))
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


def _ci_text(m: dict, digits: int = 3) -> str:
    if m["value"] is None:
        return "—"
    if m["ci_low"] is None:
        return f"{m['value']:.{digits}f}"
    return f"{m['value']:.{digits}f} [{m['ci_low']:.{digits}f}, {m['ci_high']:.{digits}f}]"


def _p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _summary_frame(entries: Sequence[RunEntry]) -> pd.DataFrame:
    """One numeric row per run, sorted by AUPRC (best first)."""
    records = []
    for e in entries:
        r = e.result
        record = {"model": e.name, "family": e.family or ("alfia" if e.is_alfia else ""), "is_alfia": e.is_alfia,
                  "run_dir": str(e.run_dir), "n": r["n"], "n_pos": r["n_pos"]}
        for metric in (*RANKING_METRICS, *OPERATING_METRICS, *CALIBRATION_METRICS):
            m = r["metrics"][metric]
            record[metric], record[f"{metric}_ci_low"], record[f"{metric}_ci_high"] = m["value"], m["ci_low"], m["ci_high"]
        record["threshold_f1"] = r["thresholds"]["f1"]
        record["threshold_chosen_on"] = r["thresholds"]["chosen_on"]
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame = frame.sort_values(["auprc", "auroc"], ascending=False, kind="mergesort").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _table_rows(entries_by_name: dict[str, RunEntry], order: Sequence[str], metrics: Sequence[str]):
    rows = []
    for rank, name in enumerate(order, start=1):
        e = entries_by_name[name]
        rows.append([str(rank), name + (" ★" if e.is_alfia else ""),
                     *[_ci_text(e.result["metrics"][m]) for m in metrics]])
    return rows


def _paired_rows(tests: Sequence[dict]):
    rows = []
    for t in tests:
        for metric in ("auprc", "auroc"):
            d = t[metric]
            ci = "—" if d["ci_low"] is None else f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
            rows.append([t["model_a"], t["model_b"], METRIC_LABELS[metric], f"{d['a']:.3f}", f"{d['b']:.3f}",
                         f"{d['difference']:+.3f}", ci, _p_text(d["p_value"])])
    return rows


PAIRED_HEADER = ("Model", "vs. best baseline", "Metric", "Model value", "Baseline value", "Difference", "95% CI",
                 "p-value")

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1150px;
       color: #1d2733; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #d5dbe3; padding-bottom: .2rem; }
.meta { color: #5b6877; font-size: .9rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; width: 100%; }
th, td { border: 1px solid #d5dbe3; padding: .3rem .5rem; text-align: right; white-space: nowrap; }
th { background: #eef2f7; } td:nth-child(2), th:nth-child(2) { text-align: left; }
tr.alfia td { background: #fff4e5; font-weight: 600; }
.figs { display: flex; flex-wrap: wrap; gap: 1rem; }
.figs figure { margin: 0; flex: 1 1 480px; } .figs img { max-width: 100%; height: auto; border: 1px solid #e3e8ee; }
.scroll { overflow-x: auto; } * { box-sizing: border-box; }
figcaption { font-size: .8rem; color: #5b6877; }
.note { background: #f6f8fa; border-left: 3px solid #8aa1b8; padding: .5rem .8rem; font-size: .85rem; }
code { background: #f0f3f6; padding: 0 .2rem; border-radius: 3px; }
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], highlight: Sequence[bool] | None = None,
                first_left: bool = False) -> str:
    left = ' style="text-align:left"'
    head = "".join(f"<th{left if (first_left and j == 0) else ''}>{html.escape(h)}</th>" for j, h in enumerate(header))
    body = []
    for i, row in enumerate(rows):
        cls = ' class="alfia"' if highlight and highlight[i] else ""
        style = ' style="text-align:left"'
        cells = "".join(f"<td{style if (first_left and j == 0) else ''}>{html.escape(str(c))}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


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
        results, ids = {}, None
        for e in have:
            frame = external_frame(e.run_dir, name)
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
            step(f"evaluated {e.name} on external {name}")
        order = sorted(results, key=lambda n: (-results[n]["metrics"]["auprc"]["value"],
                                               -results[n]["metrics"]["auroc"]["value"]))
        by_name = {e.name: e for e in have}
        table_rows, records = [], []
        for rank, n in enumerate(order, start=1):
            ext, internal = results[n], by_name[n].result
            citl = ext["calibration_in_the_large"]
            table_rows.append([str(rank), n + (" ★" if by_name[n].is_alfia else ""),
                               _ci_text(ext["metrics"]["auprc"]), _ci_text(internal["metrics"]["auprc"]),
                               _ci_text(ext["metrics"]["auroc"]), _ci_text(internal["metrics"]["auroc"]),
                               _ci_text(ext["metrics"]["calibration_intercept"]),
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
             _html_table(EXTERNAL_HEADER, x["table_rows"], x["highlight"]),
             "<div class=\"figs\">", _img(x["pngs"][f"forest_external_{x['name']}"], f"forest plot {name}",
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
                  "<div class=\"figs\">", _img(x["pngs"][f"shift_{x['name']}"], f"shift {name}",
                                               "Left: standardised mean difference of each predictor (red: |SMD| "
                                               "> 0.1, a notable difference; categorical: the level that differs "
                                               "most). Right: share of stays without a value, before imputation."),
                  "</div>", _html_table(SHIFT_HEADER, x["shift_rows"], first_left=True)]
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
                 "single outcome class.")


def _threshold_text(result: dict) -> str:
    t = result["thresholds"]
    return f"{t['f1']:.3f} ({t['chosen_on']})"


def _useful_text(dca: dict) -> str:
    ranges = dca["useful_thresholds"]
    if not ranges:
        return "nowhere"
    return ", ".join(f"{a:.2f}" if a == b else f"{a:.2f}–{b:.2f}" for a, b in ranges)


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
            cells = [_ci_text(blocks[n]["groups"][attribute][i]["metrics"]["auroc"]) for n in order]
            rows.append([entry["level"], str(entry["n"]), str(entry["n_pos"]), *cells])
        column = first["columns"].get(attribute)
        tables.append((f"{SUBGROUP_LABELS.get(attribute, attribute)} (column {column})", header, rows))
    return tables


def compare_runs(run_paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, split: str = "test",
                 n_boot: int = 1000, seed: int = 42, cohort: str | os.PathLike | None = None,
                 on_progress: Callable[[str], None] | None = None) -> dict:
    """Build the comparison report of ``run_paths`` (run dirs or folders of runs) into ``out``.

    Writes comparison.md, comparison.csv, comparison.json, paired_tests.csv, subgroups.csv,
    decision_curve.csv, report.html and figures/{forest_auprc,roc,pr,calibration,decision_curve}.png, each
    atomically. Subgroup columns (sex, age band, ICU unit) are joined by stay_id from ``cohort``, default
    the data file the first run records. Returns the comparison dict (also comparison.json). Raises
    AlfiaError when the runs do not share the same stays in ``split``.
    """
    from alfia.evaluation import plots
    from alfia.evaluation.curves import calibration_band, decision_curve
    from alfia.evaluation.subgroups import subgroup_attributes, subgroup_frame, subgroup_metrics

    step = on_progress or (lambda _msg: None)
    run_dirs = find_run_dirs(run_paths)
    entries = _load_runs(run_dirs, split)
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

    baselines = [name for name in order if not by_name[name].is_alfia]
    alfia_runs = [name for name in order if by_name[name].is_alfia]
    best_baseline = baselines[0] if baselines else None
    tests, notes = [], []
    if best_baseline and alfia_runs:
        for name in alfia_runs:
            tests.append(paired_compare(by_name[name].predictions, by_name[best_baseline].predictions, split,
                                        n_boot=n_boot, seed=seed, name_a=name, name_b=best_baseline))
            step(f"paired test {name} vs {best_baseline}")
    elif not alfia_runs:
        notes.append("No ALFIA run among the compared runs (config.json model_family alfia/alfia-boost/alfia-nn, "
                     "or a name starting with ALFIA): no paired test.")
    else:
        notes.append("No baseline among the compared runs: no paired test.")

    out = Path(out)
    figures_dir = out / "figures"
    reference = entries[0].rows
    curves = [plots.Curve(name, by_name[name].rows["label"].reindex(reference.index).to_numpy(),
                          by_name[name].rows["prob"].reindex(reference.index).to_numpy(), by_name[name].is_alfia)
              for name in order]
    figs = {
        "forest_auprc": plots.forest_figure(order, summary["auprc"], summary["auprc_ci_low"], summary["auprc_ci_high"],
                                            list(summary["is_alfia"]), title=f"AUPRC on {split} with 95% CI"),
        "roc": plots.roc_figure(curves, f"ROC curves ({split})"),
        "pr": plots.pr_figure(curves, f"Precision-recall curves ({split})"),
        "calibration": plots.calibration_figure(curves, f"Calibration ({split})"),
        "decision_curve": plots.decision_curve_figure(curves, f"Decision curve ({split})"),
    }
    pngs = {name: plots.figure_png(fig) for name, fig in figs.items()}
    step("drew figures")
    externals = _external_comparisons(entries, n_boot=n_boot, seed=seed, notes=notes, step=step)
    for section in externals:
        pngs.update(section["pngs"])

    first = entries[0].result
    meta = {"split": split, "n": first["n"], "n_pos": first["n_pos"], "prevalence": first["prevalence"],
            "n_boot": n_boot, "seed": seed, "n_runs": len(entries),
            "created": _dt.datetime.now().isoformat(timespec="seconds")}
    main_metrics = RANKING_METRICS
    main_header = ["Rank", "Model", *[f"{METRIC_LABELS[m]} (95% CI)" for m in main_metrics]]
    main_rows = _table_rows(by_name, order, main_metrics)
    op_header = ["Rank", "Model", "Threshold (chosen on)", *[METRIC_LABELS[m] for m in OPERATING_METRICS]]
    op_rows = [[row[0], row[1], _threshold_text(by_name[name].result), *row[2:]]
               for row, name in zip(_table_rows(by_name, order, OPERATING_METRICS), order)]
    subgroup_tables = _subgroup_tables(by_name, order)
    if attributes is None:
        notes.append("No subgroup tables: no compared run records a cohort file that still exists; pass one "
                     "with --cohort.")
    elif not subgroup_tables:
        notes.append(f"No subgroup tables: {subgroup_source} has none of the sex, age or ICU-unit columns.")
    dca_summary = [[name, _useful_text(by_name[name].result["decision_curve"])] for name in order]
    cal_header = ["Rank", "Model", *[METRIC_LABELS[m] for m in CALIBRATION_METRICS]]
    cal_rows = _table_rows(by_name, order, CALIBRATION_METRICS)
    threshold_note = ("Thresholds for the operating-point metrics are the max-F1 thresholds chosen on each run's "
                      "validation rows and applied unchanged to the compared split; Best F1/F2 are test-optimal, "
                      "as the paper reports.")
    if any(by_name[n].result["thresholds"]["chosen_on"] != "val" for n in order):
        notes.append("Some runs have no usable val rows: their thresholds were chosen on the compared split itself.")
    method = (f"95% CIs: stratified percentile bootstrap ({n_boot} resamples, seed {seed}; deaths and survivors "
              "resampled separately). Paired tests score both models on the same resamples; the p-value is twice "
              "the share of resampled differences on the far side of 0 (two-sided). ★ marks ALFIA runs.")

    # Markdown
    md = [f"# Model comparison — {split} split", "",
          f"{meta['n']} stays, {meta['n_pos']} deaths (prevalence {meta['prevalence']:.3f}); "
          f"{len(entries)} runs. {method}", "", "## Discrimination (sorted by AUPRC)", "",
          _markdown_table(main_header, main_rows), "",
          "## Operating point (threshold chosen on val)", "", threshold_note, "", _markdown_table(op_header, op_rows),
          "", "## Calibration", "", _markdown_table(cal_header, cal_rows), "",
          "## Decision curve", "", DCA_NOTE, "", _markdown_table(["Model", "Net benefit above treat-all and "
                                                                  "treat-none at p_t"], dca_summary), ""]
    if subgroup_tables:
        md += ["## Subgroups", "", SUBGROUP_NOTE + f" Source: `{subgroup_source}`.", ""]
        for title, header, rows in subgroup_tables:
            md += [f"### {title}", "", _markdown_table(header, rows), ""]
    if tests:
        md += [f"## Paired bootstrap tests against the best baseline ({best_baseline})", "",
               _markdown_table(PAIRED_HEADER, _paired_rows(tests)), ""]
    for x in externals:
        md += [f"## External cohort {x['name']}: {x['n']} stays, {x['n_pos']} deaths (scored whole)", "",
               f"Thresholds and ensemble weights come from internal validation; the external labels are read only "
               f"after scoring. Shift: {x['headline'] or 'no shift report'}.", "",
               _markdown_table(EXTERNAL_HEADER, x["table_rows"]), ""]
        if x["shift_rows"]:
            md += [_markdown_table(SHIFT_HEADER, x["shift_rows"]), ""]
    md += [f"- {n}" for n in notes] + ([""] if notes else [])
    md += ["## Runs", ""] + [f"- {name}: `{by_name[name].run_dir}`" for name in order] + [""]

    # HTML
    highlight = [by_name[n].is_alfia for n in order]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>ALFIA model comparison — {html.escape(split)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Model comparison — {html.escape(split)} split</h1>",
        f"<p class=\"meta\">{meta['n']} stays, {meta['n_pos']} deaths (prevalence {meta['prevalence']:.3f}) · "
        f"{len(entries)} runs · generated {html.escape(meta['created'])} by <code>alfia compare</code></p>",
        f"<p class=\"note\">{html.escape(method)}</p>",
        "<h2>Discrimination, sorted by AUPRC</h2>", _html_table(main_header, main_rows, highlight),
    ]
    if tests:
        parts += [f"<h2>ALFIA against the best baseline ({html.escape(best_baseline)}): paired bootstrap</h2>",
                  _html_table(PAIRED_HEADER, _paired_rows(tests), first_left=True)]
    parts += [f"<p class=\"note\">{html.escape(n)}</p>" for n in notes]
    parts += ["<h2>AUPRC with 95% CI</h2><div class=\"figs\">",
              _img(pngs["forest_auprc"], "forest plot of AUPRC", "Point estimate and 95% stratified bootstrap CI; "
                   "ALFIA runs in red."), "</div>",
              "<h2>ROC and precision-recall curves</h2><div class=\"figs\">",
              _img(pngs["roc"], "ROC curves", "ROC curves overlaid."),
              _img(pngs["pr"], "precision-recall curves", "Precision-recall curves; dotted line: prevalence."),
              "</div>",
              "<h2>Operating point (threshold chosen on val)</h2>",
              f"<p class=\"meta\">{html.escape(threshold_note)}</p>", _html_table(op_header, op_rows, highlight),
              "<h2>Calibration</h2>", _html_table(cal_header, cal_rows, highlight), "<div class=\"figs\">",
              _img(pngs["calibration"], "calibration curves", "Reliability diagram over 10 equal-width bins (the "
                   "ECE's; bins with fewer than 10 stays not drawn) and the distribution of predicted "
                   "probabilities. Slope 1 and intercept 0 are ideal. Shaded: Wilson 95% interval of each "
                   "bin's observed mortality."), "</div>",
              "<h2>Decision curve</h2>", f"<p class=\"meta\">{html.escape(DCA_NOTE)}</p><div class=\"figs\">",
              _img(pngs["decision_curve"], "decision curve", "Net benefit per stay against the threshold "
                   "probability; dashed: treat all; dotted: treat none."),
              _html_table(["Model", "Net benefit above treat-all and treat-none at p_t"], dca_summary,
                          first_left=True), "</div>"]
    if subgroup_tables:
        parts += ["<h2>Subgroups</h2>",
                  f"<p class=\"meta\">{html.escape(SUBGROUP_NOTE)} Source: <code>{html.escape(str(subgroup_source))}"
                  "</code>.</p>"]
        for title, header, rows in subgroup_tables:
            parts += [f"<h3>{html.escape(title)}</h3>", _html_table(header, rows, first_left=True)]
    parts += [part for x in externals for part in _external_html(x)]
    parts += ["<h2>Runs</h2>",
              _html_table(["Model", "Family", "Run directory"],
                          [[n, by_name[n].family or "—", str(by_name[n].run_dir)] for n in order], first_left=True),
              "</body></html>"]

    comparison = {**meta, "sort_metric": "auprc", "best_baseline": best_baseline,
                  "runs": [{"model": n, "family": by_name[n].family, "is_alfia": by_name[n].is_alfia,
                            "run_dir": str(by_name[n].run_dir), "result": by_name[n].result} for n in order],
                  "paired_tests": tests, "notes": notes,
                  "external": {x["name"]: {"n": x["n"], "n_pos": x["n_pos"], "prevalence": x["prevalence"],
                                           "order": x["order"], "shift": x["shift"], "headline": x["headline"],
                                           "results": x["results"]} for x in externals}}

    paired_frame = pd.DataFrame.from_records(
        [{"model": t["model_a"], "baseline": t["model_b"], "metric": metric, "model_value": t[metric]["a"],
          "baseline_value": t[metric]["b"], "difference": t[metric]["difference"], "ci_low": t[metric]["ci_low"],
          "ci_high": t[metric]["ci_high"], "p_value": t[metric]["p_value"], "n_boot": t["n_boot"], "seed": t["seed"]}
         for t in tests for metric in ("auprc", "auroc")],
        columns=["model", "baseline", "metric", "model_value", "baseline_value", "difference", "ci_low", "ci_high",
                 "p_value", "n_boot", "seed"])

    written: dict[str, Path] = {}
    for name, png in pngs.items():
        written[name] = write_atomic(figures_dir / f"{name}.png", lambda p, png=png: p.write_bytes(png))
    subgroup_csv = pd.concat([subgroup_frame(by_name[n].result["subgroups"]).assign(model=n) for n in order
                              if by_name[n].result.get("subgroups", {}).get("groups")] or [pd.DataFrame()])
    written["subgroups_csv"] = write_text_atomic(out / "subgroups.csv", subgroup_csv.to_csv(index=False))
    dca = by_name[order[0]].result["decision_curve"]
    dca_frame = pd.DataFrame({"threshold": dca["thresholds"], "treat_all": dca["treat_all"],
                              **{n: by_name[n].result["decision_curve"]["net_benefit"] for n in order}})
    written["decision_curve_csv"] = write_text_atomic(out / "decision_curve.csv", dca_frame.to_csv(index=False))
    written["csv"] = write_text_atomic(out / "comparison.csv", summary.to_csv(index=False))
    written["paired_csv"] = write_text_atomic(out / "paired_tests.csv", paired_frame.to_csv(index=False))
    for x in externals:
        written[f"external_{x['name']}_csv"] = write_text_atomic(out / f"external_{x['name']}.csv",
                                                                 x["frame"].to_csv(index=False))
    written["markdown"] = write_text_atomic(out / "comparison.md", "\n".join(md))
    written["json"] = write_json_atomic(out / "comparison.json", comparison)
    written["html"] = write_text_atomic(out / "report.html", "\n".join(parts))
    comparison["outputs"] = {k: str(v) for k, v in written.items()}
    comparison["table"] = summary
    return comparison
