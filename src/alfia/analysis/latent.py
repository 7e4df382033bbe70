"""``alfia analyze``: the paper's latent-space analysis (Fig. 6) for one or more ALFIA runs.

On the same stays, for every run:

- **layer weights** (Fig. 6a): the mean lambda (eq. 7) of each fused layer across stays, for all stays and split
  by outcome; one heatmap row per run (runs on different backbones side by side), layers aligned from the top
  (L-3 .. L for N_f = 4);
- **embedding comparison** (Fig. 6b-c): the run's pooler output (ALF) against CLS, mean and max pooling of the top
  N_f layers (``states.py``: one encoder pass gives them all), and against the cohort's tabular matrix; for each
  an MLP of the zoo (``NeuralNetMLP``, early-stopped on val AUPRC) is trained on the train stays and scored on the
  test stays: AUPRC and AUROC with stratified-bootstrap 95% CIs;
- **UMAP** (Fig. 6d-f): each representation of the ``geometry_split`` stays (test by default: ALF was fitted to the
  train stays' outcomes, so their geometry flatters it) reduced to 2-D (umap-learn; standardised features,
  seeded), coloured by outcome;
- **the five measures** (Fig. 6g-k) on those 2-D coordinates: ``geometry.separation_measures`` defines each and
  says which are higher-is-better.

Outputs (``--out``, default RUN/analysis of the first run, where ``alfia card`` finds them): analysis.html (one
self-contained page), analysis.json, layer_weights.csv, embeddings.csv, umap.csv and figures/*.png.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.analysis.geometry import HIGHER_IS_BETTER, MEASURE_LABELS, MEASURES, separation_measures
from alfia.analysis.states import POOLINGS, encode_stays
from alfia.atomic import write_atomic, write_json_atomic
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.runs import RunLayout

TABULAR = "tabular"
SURVIVOR_COLOUR, DEATH_COLOUR = "#3b6fb6", "#f2b701"  # the paper's: blue survival, yellow mortality


@dataclass
class Representation:
    model: str  # the run's name, or "cohort" for the tabular matrix
    name: str  # tabular, CLS, mean, max, ALF (or the run's pooler)
    frame: pd.DataFrame  # one row per stay, the features an MLP reads
    spec: object  # baselines.preprocessing.FeatureSpec


def _ranking_with_ci(y, prob, *, n_boot: int, seed: int) -> dict:
    from alfia.evaluation.bootstrap import bootstrap_distribution, with_ci
    from alfia.evaluation.metrics import RankedScores, ranking_metrics

    ranked = RankedScores.of(y, prob)

    def statistic(weights):
        m = ranking_metrics(y, prob, weights, ranked)
        return {"auprc": m["auprc"], "auroc": m["auroc"]}

    point = statistic(np.ones((1, len(y))))
    samples = bootstrap_distribution(y, statistic, n_boot=n_boot, seed=seed)
    return {k: with_ci(point[k][0], samples[k]) for k in point}


def read_stays(path: str | os.PathLike, *, max_stays: int | None, seed: int) -> tuple[pd.DataFrame, object]:
    """The input's labelled stays with their split (a seeded subset of ``max_stays``), and its manifest."""
    from alfia.cohorts.io import read_table_or_csv
    from alfia.cohorts.validate import check_labels

    df, manifest = read_table_or_csv(path)
    for column in (ID_COLUMN, SPLIT_COLUMN, OUTCOME_COLUMN):
        if column not in df.columns:
            raise AlfiaError(f"{path}: no {column!r} column; analyze trains on the train stays and scores the test "
                             f"stays of a labelled, split table (a cohort or `alfia text` output)")
    if max_stays is not None and len(df) > max_stays:
        if max_stays < 16:
            raise AlfiaError(f"--max-stays must be at least 16 (train, val and test need stays), got {max_stays}")
        keep = np.sort(np.random.default_rng(seed).choice(len(df), size=max_stays, replace=False))
        df = df.iloc[keep]
    df = df.reset_index(drop=True)
    check_labels(df, str(path))
    for split in ("train", "val", "test"):
        labels = df.loc[df[SPLIT_COLUMN].astype(str) == split, OUTCOME_COLUMN]
        if labels.nunique() < 2:
            raise AlfiaError(f"{path}: the {split} stays{' (after --max-stays)' if max_stays else ''} hold "
                             f"{'no stay' if labels.empty else 'a single outcome'}; analyze needs deaths and survivors "
                             f"in train, val and test")
    return df, manifest


def _tabular(df: pd.DataFrame, manifest, source: str, notes: list[str]) -> Representation | None:
    from alfia.baselines.preprocessing import FeatureSpec
    from alfia.cohorts.io import infer_variant

    try:
        variant = (manifest.variant if manifest is not None and manifest.variant else None) or \
            infer_variant(df, manifest, source)
        spec = FeatureSpec.from_schema(variant, df, source=source)
    except AlfiaError as e:
        notes.append(f"no tabular matrix: {e}")
        return None
    return Representation("cohort", TABULAR, df.loc[:, spec.columns], spec)


def _embedding(model: str, name: str, matrix: np.ndarray) -> Representation:
    from alfia.baselines.preprocessing import FeatureSpec

    columns = [f"{name.lower()}_{j}" for j in range(matrix.shape[1])]
    return Representation(model, name, pd.DataFrame(matrix, columns=columns), FeatureSpec((), tuple(columns)))


def _points(rep: Representation, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The representation of ``rows`` as a dense standardised matrix (the tabular one as the MLP reads it)."""
    from alfia.baselines.preprocessing import make_dense_preprocessor

    pre = make_dense_preprocessor(rep.spec, scale=True).fit(rep.frame.iloc[train])
    return np.asarray(pre.transform(rep.frame.iloc[rows]), dtype=float)


def _umap(points: np.ndarray, *, neighbours: int, seed: int) -> np.ndarray:
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap/numba speak of threads and spectral init on small inputs
        reducer = umap.UMAP(n_neighbors=max(2, min(neighbours, len(points) - 1)), n_components=2, random_state=seed,
                            n_jobs=1, init="spectral" if len(points) > 20 else "random")
        return np.asarray(reducer.fit_transform(points), dtype=float)


def analyze(run_dirs: Sequence[str | os.PathLike], input_path: str | os.PathLike, out: str | os.PathLike | None = None,
            *, max_stays: int | None = None, geometry_split: str = "test", seed: int = 42, n_boot: int = 1000,
            batch_size: int = 64, profile: str = "full", n_jobs: int | None = None, umap_neighbours: int = 15,
            device: str = "auto", overwrite: bool = False, progress=None) -> dict:
    """Write the analysis of the module docstring to ``out``; return the analysis.json document."""
    from alfia.baselines.registry import build_model
    from alfia.inference import frame_to_input, load_run
    from alfia.machine import resolve_jobs
    from alfia.outputs import check_output_dir, hold_output_dir

    if not run_dirs:
        raise AlfiaError("give at least one ALFIA run directory")
    if geometry_split not in ("train", "val", "test", "all"):
        raise AlfiaError(f"--geometry-split must be train, val, test or all, not {geometry_split!r}")
    out = Path(out) if out is not None else RunLayout.of(run_dirs[0]).analysis
    check_output_dir(out, inputs=[input_path, *run_dirs], overwrite=overwrite)
    say = progress or (lambda message: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    jobs = resolve_jobs(n_jobs)
    df, manifest = read_stays(input_path, max_stays=max_stays, seed=seed)
    split = df[SPLIT_COLUMN].astype(str).to_numpy()
    y = df[OUTCOME_COLUMN].to_numpy().astype(int)
    notes: list[str] = []
    representations: list[Representation] = []
    tabular = _tabular(df, manifest, str(input_path), notes)
    if tabular is not None:
        representations.append(tabular)
    layer_rows, run_meta = [], []
    for run_dir in run_dirs:
        run = load_run(run_dir, device=device, num_threads=jobs)
        name = str(run.config.get("model_name") or Path(run_dir).name)
        if any(m["model"] == name for m in run_meta):
            name = f"{name} ({Path(run_dir).name})"
        backbone = str(run.model.backbone_reference.get("name") or run.config["model"].get("backbone") or "?")
        say(f"encoding {len(df):,} stays with {name}")
        t = time.perf_counter()
        states = encode_stays(run, frame_to_input(df, str(input_path), run), batch_size=batch_size)
        timings[f"encode {name}"] = round(time.perf_counter() - t, 2)
        pooler = run.model.config.pooler
        for pooling in POOLINGS:
            representations.append(_embedding(name, {"cls": "CLS"}.get(pooling, pooling), states.pooled[pooling]))
        representations.append(_embedding(name, "ALF" if pooler == "alf" else f"{pooler} (run's pooler)",
                                          states.embedding))
        n_f = len(states.layers)
        run_meta.append({"model": name, "run_dir": str(run.run_dir), "backbone": backbone, "pooler": pooler,
                         "fused_layers": list(states.layers), "n_fusion_layers": n_f})
        if states.layer_weights is None:
            notes.append(f"{name}: the {pooler} pooler has no layer weights")
            continue
        for k, layer in enumerate(states.layers):
            w = states.layer_weights[:, k]
            layer_rows.append({"model": name, "backbone": backbone, "layer": int(layer),
                               "from_top": f"L-{n_f - 1 - k}" if k < n_f - 1 else "L",
                               "mean_all": float(w.mean()), "sd_all": float(w.std()),
                               "mean_survivors": float(w[y == 0].mean()), "mean_deaths": float(w[y == 1].mean())})
    train, val, test = (np.flatnonzero(split == s) for s in ("train", "val", "test"))
    geometry_rows = np.arange(len(df)) if geometry_split == "all" else np.flatnonzero(split == geometry_split)
    if len(np.unique(y[geometry_rows])) < 2:
        raise AlfiaError(f"{input_path}: the {geometry_split} stays hold a single outcome; the measures need both")
    results, umap_frames = [], []
    for rep in representations:
        say(f"MLP and UMAP on {rep.model}: {rep.name}")
        t = time.perf_counter()
        mlp = build_model("NeuralNetMLP", rep.spec, seed, profile, jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's partial_fit convergence notes, epoch by epoch
            mlp.fit(rep.frame.iloc[train], y[train], rep.frame.iloc[val], y[val])
        prob = mlp.predict_proba(rep.frame.iloc[test])[:, 1]
        scores = _ranking_with_ci(y[test], prob, n_boot=n_boot, seed=seed)
        t_mlp = time.perf_counter() - t
        coordinates = _umap(_points(rep, train, geometry_rows), neighbours=umap_neighbours, seed=seed)
        measures = separation_measures(coordinates, y[geometry_rows])
        timings[f"{rep.model}: {rep.name}"] = round(time.perf_counter() - t, 2)
        results.append({"model": rep.model, "representation": rep.name, "dims": len(rep.spec.columns),
                        "mlp_epochs": int(getattr(mlp, "best_epoch_", 0)), "mlp_val_auprc": float(mlp.val_auprc_),
                        **{f"test_{k}": v["value"] for k, v in scores.items()},
                        **{f"test_{k}_ci_{side}": v[f"ci_{side}"] for k, v in scores.items() for side in ("low", "high")},
                        **measures, "seconds_mlp": round(t_mlp, 2)})
        umap_frames.append(pd.DataFrame({"model": rep.model, "representation": rep.name,
                                         ID_COLUMN: df[ID_COLUMN].to_numpy()[geometry_rows], "label": y[geometry_rows],
                                         "x": coordinates[:, 0], "y": coordinates[:, 1]}))
    embeddings = pd.DataFrame(results)
    layers = pd.DataFrame(layer_rows, columns=["model", "backbone", "layer", "from_top", "mean_all", "sd_all",
                                                "mean_survivors", "mean_deaths"])
    coordinates = pd.concat(umap_frames, ignore_index=True)
    doc = {
        "command": "alfia analyze", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": str(input_path), "n_stays": len(df), "n_deaths": int(y.sum()),
        "splits": {s: int((split == s).sum()) for s in ("train", "val", "test")}, "geometry_split": geometry_split,
        "n_geometry_stays": int(len(geometry_rows)), "seed": seed, "n_boot": n_boot, "mlp_profile": profile,
        "umap_neighbours": umap_neighbours, "runs": run_meta,
        "layer_weights": layers.to_dict("records"), "embeddings": embeddings.to_dict("records"),
        "higher_is_better": HIGHER_IS_BETTER, "notes": notes, "timings_s": timings,
    }
    with hold_output_dir(out):
        write_atomic(out / "layer_weights.csv", lambda p: layers.to_csv(p, index=False))
        write_atomic(out / "embeddings.csv", lambda p: embeddings.to_csv(p, index=False))
        write_atomic(out / "umap.csv", lambda p: coordinates.to_csv(p, index=False))
        figures = _figures_and_page(out, doc, layers, embeddings, coordinates)
        doc["figures"] = {k: str(Path(v).relative_to(out)) for k, v in figures.items()}
        doc["seconds"] = round(time.perf_counter() - started, 1)
        write_json_atomic(out / "analysis.json", doc)
    return doc


def layer_weight_figure(layers: pd.DataFrame):
    """Fig. 6a: mean lambda per fused layer (columns, aligned from the top), one row per run."""
    from alfia.analysis.page import new_figure

    models = list(dict.fromkeys(layers["model"]))
    columns = sorted(set(layers["from_top"]), key=lambda c: -int(c[2:]) if c != "L" else 0)
    grid = layers.pivot_table(index="model", columns="from_top", values="mean_all").reindex(index=models,
                                                                                          columns=columns)
    backbones = layers.drop_duplicates("model").set_index("model")["backbone"]
    fig, ax = new_figure(1.1 * len(columns) + 3.2, 0.55 * len(models) + 1.4)
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value < np.nanmean(grid.to_numpy(dtype=float)) else "black")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(models)), [f"{m}\n({backbones[m]})" for m in models], fontsize=8)
    ax.set_xlabel("Fused layer (L = last encoder layer)")
    fig.colorbar(image, ax=ax, label="mean λ across stays")
    return fig


def _figures_and_page(out: Path, doc: dict, layers: pd.DataFrame, embeddings: pd.DataFrame,
                      coordinates: pd.DataFrame) -> dict:
    import html

    from alfia.analysis.page import fmt, html_table, new_figure, write_figure, write_page

    figures: dict = {}
    folder = out / "figures"
    parts = [f"<p class=\"note\">{html.escape(METHOD)}</p>", "<h2>Layer weights (Fig. 6a)</h2>"]
    if len(layers):
        parts.append("<div class=\"figs\">")
        write_figure(layer_weight_figure(layers), folder, "layer_weights",
                     "Mean layer weight λ per fused layer across stays", figures, parts)
        models = list(dict.fromkeys(layers["model"]))
        fig, axes = new_figure(3.2 * len(models), 2.8, ncols=len(models), squeeze=False)
        for ax, model in zip(axes[0], models):
            sub = layers[layers["model"] == model]
            pos = np.arange(len(sub))
            ax.bar(pos - 0.2, sub["mean_survivors"], width=0.4, color=SURVIVOR_COLOUR, label="survivors")
            ax.bar(pos + 0.2, sub["mean_deaths"], width=0.4, color=DEATH_COLOUR, label="deaths")
            ax.set_xticks(pos, sub["from_top"])
            ax.set_title(model, fontsize=9)
        axes[0][0].set_ylabel("mean λ")
        axes[0][0].legend(fontsize=8)
        write_figure(fig, folder, "layer_weights_by_outcome", "Mean λ by outcome", figures, parts)
        parts.append("</div>")
        parts.append(html_table(("Model", "Backbone", "Layer", "From top", "Mean λ (all)", "SD", "Survivors", "Deaths"),
                                [[r["model"], r["backbone"], r["layer"], r["from_top"], fmt(r["mean_all"]),
                                  fmt(r["sd_all"]), fmt(r["mean_survivors"]), fmt(r["mean_deaths"])]
                                 for _, r in layers.iterrows()], first_left=True))
    else:
        parts.append("<p>No run has layer weights (their poolers have none).</p>")
    labels = [f"{r['model']}: {r['representation']}" if r["model"] != "cohort" else "cohort: tabular"
              for _, r in embeddings.iterrows()]
    highlight = [r["representation"] == "ALF" for _, r in embeddings.iterrows()]

    from alfia.evaluation.format import ci_entry, ci_text

    def ci(r, metric):
        return ci_text(ci_entry(r, f"test_{metric}"), style="dash")

    header = ("Representation", "Dims", "MLP test AUPRC (95% CI)", "MLP test AUROC (95% CI)",
              *(MEASURE_LABELS[m] for m in MEASURES))
    rows = [[label, r["dims"], ci(r, "auprc"), ci(r, "auroc"), *(fmt(r[m]) for m in MEASURES)]
            for label, (_, r) in zip(labels, embeddings.iterrows())]
    parts += ["<h2>Embeddings compared (Fig. 6b–c, g–k)</h2>",
              f"<p class=\"meta\">MLP (the zoo's NeuralNetMLP, profile {html.escape(doc['mlp_profile'])}) trained on "
              f"{doc['splits']['train']:,} train stays, early-stopped on {doc['splits']['val']:,} val stays, scored on "
              f"{doc['splits']['test']:,} test stays. Measures on the 2-D UMAP coordinates of the "
              f"{doc['n_geometry_stays']:,} {html.escape(doc['geometry_split'])} stays; HIB higher is better, LIB lower "
              f"is better.</p>", html_table(header, rows, highlight, first_left=True), "<div class=\"figs\">"]
    fig, axes = new_figure(10.0, 0.32 * len(labels) + 1.5, ncols=2)
    for ax, metric in zip(axes, ("auprc", "auroc")):
        values = embeddings[f"test_{metric}"].to_numpy(dtype=float)
        low = values - embeddings[f"test_{metric}_ci_low"].to_numpy(dtype=float)
        high = embeddings[f"test_{metric}_ci_high"].to_numpy(dtype=float) - values
        ax.barh(range(len(labels)), values, xerr=[low, high], capsize=3,
                color=["#d08c2c" if h else "#8aa1b8" for h in highlight])
        ax.set_yticks(range(len(labels)), labels if ax is axes[0] else [""] * len(labels), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"MLP test {metric.upper()} (95% CI)")
    write_figure(fig, folder, "mlp", "MLP on each representation: test AUPRC and AUROC (Fig. 6b, c)", figures, parts)
    fig, axes = new_figure(3.0 * len(MEASURES), 0.3 * len(labels) + 1.6, ncols=len(MEASURES))
    for k, (ax, m) in enumerate(zip(axes, MEASURES)):
        ax.barh(range(len(labels)), embeddings[m].to_numpy(dtype=float),
                color=["#d08c2c" if h else "#8aa1b8" for h in highlight])
        ax.set_yticks(range(len(labels)), labels if k == 0 else [""] * len(labels), fontsize=7)
        ax.invert_yaxis()
        ax.set_title(MEASURE_LABELS[m], fontsize=8)
    write_figure(fig, folder, "measures", "The five latent-space measures (Fig. 6g–k)", figures, parts)
    parts.append("</div><h2>UMAP by outcome (Fig. 6d–f)</h2><div class=\"figs\">")
    tab = coordinates[coordinates["representation"] == TABULAR]
    for i, model in enumerate(m for m in dict.fromkeys(coordinates["model"]) if m != "cohort"):
        panels = [("cohort: tabular", tab)] if len(tab) else []
        sub = coordinates[coordinates["model"] == model]
        panels += [(rep, sub[sub["representation"] == rep]) for rep in dict.fromkeys(sub["representation"])]
        fig, axes = new_figure(2.7 * len(panels), 2.9, ncols=len(panels), squeeze=False)
        for ax, (title, points) in zip(axes[0], panels):
            for label, colour, name in ((0, SURVIVOR_COLOUR, "survived"), (1, DEATH_COLOUR, "died")):
                chosen = points[points["label"] == label]
                ax.scatter(chosen["x"], chosen["y"], s=5, c=colour, alpha=0.7, linewidths=0, label=name)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][0].legend(fontsize=7, markerscale=2)
        write_figure(fig, folder, f"umap_{i}", f"UMAP of {model}'s representations, coloured by outcome", figures, parts)
    parts.append("</div>")
    parts += [f"<p class=\"note\">{html.escape(n)}</p>" for n in doc["notes"]]
    parts += ["<h2>Runs</h2>", html_table(("Model", "Backbone", "Pooler", "Fused layers", "Run directory"),
                                          [[m["model"], m["backbone"], m["pooler"], ", ".join(map(str, m["fused_layers"])),
                                            m["run_dir"]] for m in doc["runs"]], first_left=True)]
    meta = (f"{doc['n_stays']:,} stays ({doc['n_deaths']:,} deaths) of {doc['input']} · {len(doc['runs'])} run(s) · "
            f"seed {doc['seed']} · generated {doc['created']} by alfia analyze")
    write_page(out / "analysis.html", "Latent space of ALFIA (Fig. 6)", meta, parts)
    return figures


METHOD = ("One encoder pass per run gives the run's own pooler output (ALF), its layer weights λ, and CLS, mean and "
          "max pooling of the plain mean of the top N_f layers. Each representation, and the cohort's tabular "
          "matrix, trains the same MLP on the train stays; UMAP and the five measures use the geometry split's stays. "
          "Centroid distance, mean minimum-neighbour distance (to the other outcome) and separation (centroid distance "
          "over the mean intra-group distance) are higher-is-better; the intra-group distances (mean distance to the "
          "group's centroid) are lower-is-better.")
