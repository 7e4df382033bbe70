"""``alfia robustness``: how a run's decisions move under small, clinically meaningful edits of the stays.

Every perturbation of ``perturb.py`` is applied to the test stays of the input (a cohort, or the text table
``alfia text`` wrote, which carries the cohort's predictors), and each run scores the stays an edit applies to,
before and after. Several runs (ALFIA runs and zoo runs) are judged side by side on the very same edited rows.
Per run and perturbation (``robustness.csv``):

- ``n_applied``: stays the edit applies to (a stay without a recorded lactate has no ``lactate_x3``); every
  measure below is over those stays;
- ``auroc_change``/``auprc_change``: perturbed minus original, with a paired stratified bootstrap 95% CI
  (``alfia.evaluation.bootstrap.paired_bootstrap``), when the stays hold both outcomes;
- ``flip_rate``: the share of stays whose decision at the run's operating threshold (``thresholds.json``, max F1
  on val) changes;
- ``mean_abs_delta_prob``, ``p95_abs_delta_prob``: mean and 95th percentile of |prob perturbed - prob original|;
- ``latent_flip_rate`` (text models): LAPD's Latent Diagnosis Flip Rate (``geometry.latent_flip_rate``, our
  reading of its definition is there), on the run's unit-length embeddings (``alfia embed``'s);
- ``share_expected_direction`` (directional edits): the share of stays whose risk rose, as it should.

Text-only edits (synonym, sentence order) do not apply to tabular models; their rows say so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.analysis.geometry import LatentProbe, latent_flip_rate
from alfia.analysis.perturb import TEXT, Perturbation, perturb_rows, render_rows, resolve_perturbations
from alfia.analysis.scorers import RunScorer, load_scorer
from alfia.atomic import write_atomic, write_json_atomic
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.runs import RunLayout

NUMERIC_FLIP_TARGET = 0.05  # issue 23: numeric +/-5% flips at most 5% of decisions
DIRECTIONAL_TARGET = 0.80  # and directional edits move the risk the right way in at least 80% of stays
METHOD = ("Each edit is made on the stay's cohort row and rendered again by the run's template (synonyms and the "
          "sentence order edit the template's text); every model scores the same edited stays. Measures are over the "
          "test stays an edit applies to. Decisions at the run's operating threshold (max F1 on val). LDFR: LAPD's "
          "latent diagnosis flip rate, in the PCA plane of the original embeddings. Directional edits should raise "
          "the risk.")
COLUMNS = ("model", "kind", "perturbation", "axis", "level", "expected_direction", "n_stays", "n_applied",
           "auroc_original", "auroc_perturbed", "auroc_change", "auroc_change_ci_low", "auroc_change_ci_high",
           "auprc_original", "auprc_perturbed", "auprc_change", "auprc_change_ci_low", "auprc_change_ci_high",
           "flip_rate", "mean_abs_delta_prob", "p95_abs_delta_prob", "mean_delta_prob", "latent_flip_rate",
           "share_expected_direction", "note")


def read_rows(path: str | os.PathLike, *, split: str = "test", max_stays: int | None = None,
              seed: int = 42) -> tuple[pd.DataFrame, str, str]:
    """The labelled stays of ``split`` from a cohort or text table: (rows, variant, missing mode of its text)."""
    from alfia.cohorts.io import infer_variant, read_table_or_csv
    from alfia.cohorts.schema import get_schema
    from alfia.cohorts.validate import check_labels

    path = Path(path)
    df, manifest = read_table_or_csv(path)
    variant = (manifest.variant if manifest is not None and manifest.variant else None) or infer_variant(df, manifest, path)
    schema = get_schema(variant)
    present = [c for c in schema.predictor_names if c in df.columns]
    if len(present) < len(schema.predictor_names) / 2:
        raise AlfiaError(f"{path}: holds {len(present)} of the {variant} schema's {len(schema.predictor_names)} "
                         f"predictors; robustness edits cohort rows: give the cohort, or the text table `alfia text` "
                         f"wrote from it (it carries the predictors)")
    for column in (ID_COLUMN, SPLIT_COLUMN, OUTCOME_COLUMN):
        if column not in df.columns:
            raise AlfiaError(f"{path}: no {column!r} column; robustness scores the labelled {split} stays")
    rows = df.loc[df[SPLIT_COLUMN].astype(str) == split].reset_index(drop=True)
    if rows.empty:
        raise AlfiaError(f"{path}: no rows in split {split!r}")
    if max_stays is not None and len(rows) > max_stays:
        if max_stays < 2:
            raise AlfiaError(f"--max-stays must be at least 2, got {max_stays}")
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=max_stays, replace=False))
        rows = rows.iloc[keep].reset_index(drop=True)
    check_labels(rows, str(path))
    missing = (manifest.extra or {}).get("missing", "omit") if manifest is not None else "omit"
    return rows, variant, missing if missing in ("omit", "state") else "omit"


def _effect(y, p0, p1, threshold: float, *, expected: int, n_boot: int, seed: int) -> dict:
    from alfia.evaluation.bootstrap import paired_bootstrap
    from alfia.evaluation.metrics import predicted_death

    delta = p1 - p0
    out = {"flip_rate": float(np.mean(predicted_death(p0, threshold) != predicted_death(p1, threshold))),
           "mean_abs_delta_prob": float(np.mean(np.abs(delta))),
           "p95_abs_delta_prob": float(np.percentile(np.abs(delta), 95)),
           "mean_delta_prob": float(np.mean(delta))}
    if expected:
        out["share_expected_direction"] = float(np.mean(np.sign(delta) == expected))
    if 0 < y.sum() < len(y):
        paired = paired_bootstrap(y, p1, p0, n_boot=n_boot, seed=seed)  # perturbed - original
        for metric in ("auroc", "auprc"):
            m = paired[metric]
            out.update({f"{metric}_original": m["b"], f"{metric}_perturbed": m["a"], f"{metric}_change": m["difference"],
                        f"{metric}_change_ci_low": m["ci_low"], f"{metric}_change_ci_high": m["ci_high"]})
    return out


def run_robustness(scorers: Sequence[RunScorer], rows: pd.DataFrame, variant: str, *,
                   perturbations: Sequence[Perturbation], missing: str = "omit", seed: int = 42, n_boot: int = 1000,
                   ldfr_components: int = 2, source: str = "input",
                   progress=None) -> tuple[pd.DataFrame, pd.DataFrame, list[dict], list[str]]:
    """Score every perturbation with every scorer: (summary rows, per-stay rows, example texts, notes)."""
    for scorer in scorers:
        if scorer.variant != variant:
            raise AlfiaError(f"{scorer.run_dir}: scores {scorer.variant} rows, but {source} is a {variant} cohort; "
                             f"give the run a cohort of its own variant")
    y = rows[OUTCOME_COLUMN].to_numpy().astype(int)
    stay_id = rows[ID_COLUMN].to_numpy()
    text_models = any(s.kind == "text" for s in scorers)
    notes: list[str] = []
    texts = render_rows(rows, variant, missing, source=source) if text_models else None
    if texts is not None and "text" in rows.columns:
        differ = int(np.sum(rows["text"].astype(str).to_numpy() != np.asarray(texts, dtype=object)))
        if differ:
            notes.append(f"{differ} of {len(rows)} texts of {source} differ from what the {variant} template renders "
                         f"from their rows now; every text model scores the re-rendered texts, before and after")
    original = {}
    probes = {}
    for scorer in scorers:
        original[scorer.name] = scorer.score(rows, texts)
        if original[scorer.name].embedding is not None and 0 < y.sum() < len(y):
            probes[scorer.name] = LatentProbe(original[scorer.name].embedding, y, components=ldfr_components, seed=seed)
    summary, per_stay, examples = [], [], []
    for p in perturbations:
        if progress:
            progress(p.name)
        if p.level == TEXT and not text_models:
            # Only models that read the row: there is no text to edit, and each scorer's row below says so.
            edited, index = None, np.array([], dtype=int)
        else:
            edited = perturb_rows(rows, variant, p, seed=seed, missing=missing, render=text_models, source=source)
            index = np.flatnonzero(edited.applied)
        if index.size and edited.texts is not None:
            i = int(index[0])
            examples.append({"perturbation": p.name, ID_COLUMN: stay_id[i], "change": edited.changes[i],
                             "original_text": edited.original_texts[i], "perturbed_text": edited.texts[i]})
        for scorer in scorers:
            row = {"model": scorer.name, "kind": scorer.kind, "perturbation": p.name, "axis": p.axis,
                   "level": p.level, "expected_direction": p.expected_direction, "n_stays": len(rows),
                   "n_applied": int(index.size), "note": ""}
            if p.level == TEXT and scorer.kind != "text":
                row.update(n_applied=0, note="an edit of the text: a tabular model does not read it")
            elif index.size == 0:
                row["note"] = "applies to none of the stays"
            else:
                scores = scorer.score(edited.rows.iloc[index],
                                      None if edited.texts is None else [edited.texts[i] for i in index])
                p0, p1 = original[scorer.name].prob[index], scores.prob
                row.update(_effect(y[index], p0, p1, scorer.threshold, expected=p.expected_direction, n_boot=n_boot,
                                   seed=seed))
                if scorer.name in probes and scores.embedding is not None:
                    row["latent_flip_rate"] = latent_flip_rate(probes[scorer.name],
                                                               original[scorer.name].embedding[index], scores.embedding)
                per_stay.append(pd.DataFrame({"model": scorer.name, "perturbation": p.name, ID_COLUMN: stay_id[index],
                                              "label": y[index], "prob_original": p0, "prob_perturbed": p1,
                                              "change": [edited.changes[i] for i in index]}))
            summary.append(row)
    table = pd.DataFrame(summary).reindex(columns=list(COLUMNS))
    stays = pd.concat(per_stay, ignore_index=True) if per_stay else pd.DataFrame(
        columns=["model", "perturbation", ID_COLUMN, "label", "prob_original", "prob_perturbed", "change"])
    return table, stays, examples, notes


def target_checks(table: pd.DataFrame) -> list[dict]:
    """The issue's targets, per model: numeric +/-5% flips <= 5%; directional edits the right way >= 80%."""
    checks = []
    for model, rows in table.groupby("model", sort=False):
        five = rows[rows["perturbation"].isin(["numeric_+5%", "numeric_-5%"]) & rows["flip_rate"].notna()]
        if len(five):
            worst = float(five["flip_rate"].max())
            checks.append({"model": model, "target": f"numeric ±5% flips <= {NUMERIC_FLIP_TARGET:.0%} of decisions",
                           "value": worst, "met": worst <= NUMERIC_FLIP_TARGET})
        for _, r in rows[(rows["axis"] == "directional") & rows["share_expected_direction"].notna()].iterrows():
            share = float(r["share_expected_direction"])
            checks.append({"model": model, "target": f"{r['perturbation']} raises the risk in >= {DIRECTIONAL_TARGET:.0%}",
                           "value": share, "met": share >= DIRECTIONAL_TARGET})
    return checks


def robustness(run_dirs: Sequence[str | os.PathLike], input_path: str | os.PathLike,
               out: str | os.PathLike | None = None, *, perturbations: Sequence[str] | None = None,
               split: str = "test", max_stays: int | None = None, seed: int = 42, n_boot: int = 1000,
               ldfr_components: int = 2, batch_size: int = 64, device: str = "auto", overwrite: bool = False,
               progress=None) -> dict:
    """``alfia robustness``: write robustness.csv/.json/.html, per_stay.parquet, examples.csv and figures/ to
    ``out`` (default RUN/robustness of the first run, where ``alfia card`` finds it); returns the JSON document."""
    from alfia.outputs import check_output_dir, hold_output_dir

    if not run_dirs:
        raise AlfiaError("give at least one run directory")
    out = Path(out) if out is not None else RunLayout.of(run_dirs[0]).robustness
    check_output_dir(out, inputs=[input_path, *run_dirs], overwrite=overwrite)
    chosen = resolve_perturbations(perturbations)
    started = time.perf_counter()
    scorers = [load_scorer(r, device=device, batch_size=batch_size) for r in run_dirs]
    names = [s.name for s in scorers]
    for i, s in enumerate(scorers):  # two runs of one name would mix their rows
        if names.count(s.name) > 1:
            s.name = f"{s.name} ({s.run_dir.name})"
    rows, variant, missing = read_rows(input_path, split=split, max_stays=max_stays, seed=seed)
    table, stays, examples, notes = run_robustness(scorers, rows, variant, perturbations=chosen, missing=missing,
                                                   seed=seed, n_boot=n_boot, ldfr_components=ldfr_components,
                                                   source=str(input_path), progress=progress)
    checks = target_checks(table)
    doc = {
        "command": "alfia robustness", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": str(input_path), "variant": variant, "split": split, "n_stays": len(rows),
        "n_deaths": int(rows[OUTCOME_COLUMN].sum()), "seed": seed, "n_boot": n_boot, "ldfr_components": ldfr_components,
        "runs": [{"model": s.name, "kind": s.kind, "run_dir": str(s.run_dir), "threshold": s.threshold}
                 for s in scorers],
        "perturbations": [{"name": p.name, "axis": p.axis, "level": p.level, "description": p.description,
                           "expected_direction": p.expected_direction} for p in chosen],
        "results": _records(table), "targets": checks, "notes": notes,
        "seconds": round(time.perf_counter() - started, 1),
        "definitions": {
            "flip_rate": "share of the stays an edit applies to whose decision at the run's threshold changes",
            "latent_flip_rate": "LAPD's LDFR: share whose unit-length embedding crosses a balanced logistic probe's "
                                f"boundary in the {ldfr_components}-component PCA plane of the original embeddings",
            "share_expected_direction": "share of stays whose risk rose under a directional edit",
            "auroc_change": "perturbed minus original, paired stratified bootstrap 95% CI"},
    }
    with hold_output_dir(out):
        write_atomic(out / "robustness.csv", lambda p: table.to_csv(p, index=False))
        write_atomic(out / "per_stay.parquet", lambda p: stays.to_parquet(p, index=False))
        write_atomic(out / "examples.csv", lambda p: pd.DataFrame(examples).to_csv(p, index=False))
        figures = _figures_and_page(out, doc, table, examples)
        doc["figures"] = {k: str(Path(v).relative_to(out)) for k, v in figures.items()}
        write_json_atomic(out / "robustness.json", doc)
    return doc


def _records(table: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
            for r in table.astype(object).where(table.notna(), None).to_dict("records")]


def _figures_and_page(out: Path, doc: dict, table: pd.DataFrame, examples: list[dict]) -> dict:
    import html

    from alfia.analysis.page import fmt, html_table, new_figure, write_figure, write_page

    figures: dict = {}
    parts = [f"<p class=\"note\">{html.escape(METHOD)}</p>"]
    models = list(dict.fromkeys(table["model"]))
    perts = list(dict.fromkeys(table["perturbation"]))
    header = ("Perturbation", "Model", "Stays edited", "Decisions flipped", "LDFR", "Mean |Δp|", "p95 |Δp|",
              "ΔAUROC (95% CI)", "ΔAUPRC (95% CI)", "Risk up", "Note")

    def change(r, metric):
        if r[f"{metric}_change"] is None or pd.isna(r[f"{metric}_change"]):
            return "—"
        return (f"{r[f'{metric}_change']:+.3f} ({fmt(r[f'{metric}_change_ci_low'])} to "
                f"{fmt(r[f'{metric}_change_ci_high'])})")

    rows = [[r["perturbation"], r["model"], f"{int(r['n_applied'])} / {int(r['n_stays'])}",
             fmt(r["flip_rate"]), fmt(r["latent_flip_rate"]), fmt(r["mean_abs_delta_prob"]),
             fmt(r["p95_abs_delta_prob"]), change(r, "auroc"), change(r, "auprc"),
             fmt(r["share_expected_direction"]), r["note"] or ""] for _, r in table.iterrows()]
    parts += ["<h2>Effect of each perturbation</h2>", html_table(header, rows, first_left=True)]
    if doc["targets"]:
        parts += ["<h2>Targets</h2>", html_table(("Model", "Target", "Measured", "Met"),
                                                 [[c["model"], c["target"], fmt(c["value"]), "yes" if c["met"] else "no"]
                                                  for c in doc["targets"]], first_left=True)]
    parts.append("<h2>Figures</h2><div class=\"figs\">")
    for metric, name, caption in (("flip_rate", "flip_rate", "Share of decisions flipped at the operating threshold"),
                                  ("mean_abs_delta_prob", "delta_prob", "Mean |Δ probability| (bar) and p95 (tick)")):
        fig, ax = new_figure(7.5, 0.35 * len(perts) * max(1, len(models)) + 1.6)
        height = 0.8 / max(1, len(models))
        for j, model in enumerate(models):
            sub = table[table["model"] == model].set_index("perturbation").reindex(perts)
            pos = np.arange(len(perts)) + j * height
            ax.barh(pos, sub[metric].astype(float).fillna(0.0), height=height, label=model)
            if metric == "mean_abs_delta_prob":
                ax.plot(sub["p95_abs_delta_prob"].astype(float), pos, "|", color="black", markersize=9)
        ax.set_yticks(np.arange(len(perts)) + height * (len(models) - 1) / 2, perts)
        ax.invert_yaxis()
        ax.set_xlabel(caption)
        if metric == "flip_rate":
            ax.axvline(NUMERIC_FLIP_TARGET, color="grey", linestyle=":", linewidth=1)
        ax.legend(loc="lower right", fontsize=8)
        write_figure(fig, out / "figures", name, caption, figures, parts)
    directional = table[table["axis"] == "directional"]
    if directional["share_expected_direction"].notna().any():
        fig, ax = new_figure(6.5, 3.0)
        labels = [f"{r['perturbation']}\n{r['model']}" for _, r in directional.iterrows()]
        ax.bar(range(len(labels)), directional["share_expected_direction"].astype(float).fillna(0.0), color="#d08c2c")
        ax.axhline(DIRECTIONAL_TARGET, color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("Share of stays whose risk rose")
        write_figure(fig, out / "figures", "directional", "Directional edits: share moving the risk up", figures, parts)
    parts.append("</div>")
    if examples:
        parts += ["<h2>One example of each edit</h2>",
                  html_table(("Perturbation", "Stay", "Change", "Original text", "Perturbed text"),
                             [[e["perturbation"], e[ID_COLUMN], e["change"], e["original_text"], e["perturbed_text"]]
                              for e in examples], first_left=True)
                  .replace('<div class="scroll">', '<div class="scroll wrap">', 1),
                  "<style>.wrap td { white-space: normal; text-align: left; vertical-align: top; }</style>"]
    parts += [f"<p class=\"note\">{html.escape(n)}</p>" for n in doc["notes"]]
    meta = (f"{doc['n_stays']:,} {doc['split']} stays ({doc['n_deaths']:,} deaths) of {doc['input']} · "
            f"{len(models)} model(s) · seed {doc['seed']} · generated {doc['created']} by alfia robustness")
    write_page(out / "robustness.html", "Robustness to clinically meaningful edits", meta, parts)
    return figures
