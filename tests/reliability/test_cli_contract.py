"""What every command of the CLI promises, checked by walking the typer app, so that a command added later
cannot be forgotten: each option's --help shows its default, and each command that writes refuses an existing
output without --overwrite (issues 20 and 24)."""

from __future__ import annotations

import click
import pytest


def _commands() -> dict[str, click.Command]:
    """Every leaf command of ``alfia`` by its path ("cohort synthetic", "train", ...)."""
    import typer

    from alfia.cli import _register, app

    _register()
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            found[path] = command

    walk(typer.main.get_command(app), "")
    return found


def _shows_default(option: click.Option) -> bool:
    if option.is_flag and not option.secondary_opts:  # --overwrite, --hourly: off unless given
        return True
    if isinstance(option.show_default, str):
        return True
    return option.show_default is not False and option.default is not None and option.default != ()


def test_every_option_shows_its_default_in_help():
    missing = [f"alfia {path} {opt.opts[0]}" for path, command in _commands().items()
               for opt in command.params if isinstance(opt, click.Option) and opt.name != "help"
               and not opt.required and not _shows_default(opt)]
    assert not missing, "options whose --help shows no default:\n" + "\n".join(missing)


# --- every command that writes refuses an existing output ----------------------------------------

OUTPUT_PARAMS = ("out", "out_path", "out_dir")
# Commands that always refuse an existing output and so take no --overwrite: a run folder is continued with
# --resume, never replaced.
NO_OVERWRITE = {"train": "--resume continues a run", "series train": "--resume continues a run",
                "series transfer": "writes two runs and transfer.json into a new folder",
                "lemof train": "a run folder holds the encoders it trained: never replaced, choose another --out",
                "federated train": "a run folder is never replaced: choose another --out"}
REFUSALS = ("already exists", "not empty", "already holds")


def _writing_commands() -> dict[str, click.Command]:
    return {path: c for path, c in _commands().items() if any(p.name in OUTPUT_PARAMS for p in c.params)}


def test_every_writing_command_takes_overwrite():
    lacking = [path for path, command in _writing_commands().items()
               if path not in NO_OVERWRITE and not any(p.name == "overwrite" for p in command.params)]
    assert not lacking, f"commands that write but take no --overwrite: {lacking}"


def _series_assets(root):
    """An hourly table and a series run trained on it (one epoch)."""
    import numpy as np

    from alfia.series.hourly import frame_from_arrays, read_hourly, write_hourly
    from alfia.series.train import SeriesTrainConfig, train_series
    from alfia.series.variables import VOCABULARY

    variables = [VOCABULARY[n] for n in ("age", "heart_rate")]
    values = np.random.default_rng(0).normal(80, 10, size=(40, 4, 2))
    split = np.array(["train"] * 24 + ["val"] * 8 + ["test"] * 8, dtype=object)
    frame = frame_from_arrays(np.arange(40) + 1, (np.arange(40) % 4 == 0).astype(int), split, values,
                              [v.name for v in variables])
    hourly = root / "hourly.parquet"
    write_hourly(frame, hourly, source="synthetic", variables=variables, hours=4)
    train_series(read_hourly(hourly), root / "srun", SeriesTrainConfig(model="gru", epochs=1, threads=1,
                                                                       hourly=str(hourly)))
    return hourly, root / "srun"


def _existing(path, folder: bool = False):
    if folder:
        path.mkdir(parents=True)
        (path / "earlier.txt").write_text("an earlier output")
    else:
        path.write_text("an earlier output")
    return path


def _refusal_args(path: str, t, a, hourly, srun) -> list:
    """Arguments of ``alfia PATH`` that would write over an existing output (``t``: the case's folder)."""
    from reliability_testkit import record_text, write_outcomes, write_tar

    def records():
        return ["--records", write_tar(t / "set-a.tar.gz", {f"{i}.txt": record_text(i) for i in (1, 2, 3)}),
                "--outcomes", write_outcomes(t / "Outcomes-a.txt", [1, 2, 3])]

    file, folder = _existing(t / "out.parquet"), None
    if path in ("train", "export", "compare", "baselines", "boost", "series train", "series transfer", "demo",
                "lemof train", "analyze", "robustness", "federated train"):
        file.unlink()
        folder = _existing(t / "outdir", folder=True)
    return {
        "cohort synthetic": ["--n", "50", "--out", file],
        "cohort physionet2012": [*records(), "--out", file],
        "cohort mimic-iv": ["--mimic-dir", t / "mimic", "--out", file],
        "cohort eicu": ["--eicu-dir", t / "eicu", "--out", file],
        "encode": [a.cohort_path, "--out", file],
        "train": [a.text_path, "--out", folder],
        "predict": [a.run, "--input", a.text_path, "--out", file],
        "embed": [a.run, "--input", a.text_path, "--out", file],
        "export": [a.run, "--out", folder],
        "compare": [a.run, "--out", folder],
        "card": [a.run, "--out", file],
        "baselines": [a.cohort_path, "--out", folder],
        "boost": [a.cohort_path, "--embeddings", a.text_path, "--out", folder],
        "series build physionet2012": [*records(), "--out", file],
        "series build yaib-eicu": ["--yaib-dir", t / "yaib", "--out", file],
        "series build mimic-iv": ["--mimic-dir", t / "mimic", "--out", file],
        "series train": [hourly, "--out", folder, "--epochs", "1"],
        "series predict": [srun, "--input", hourly, "--out", file],
        "series transfer": [srun, "--input", hourly, "--out", folder],
        "demo": ["--out", folder, "--n-stays", "100"],
        "lemof train": ["--text", a.text_path, "--series", hourly, "--cohort", a.cohort_path, "--out", folder],
        "analyze": [a.run, "--input", a.text_path, "--out", folder],
        "robustness": [a.run, "--input", a.text_path, "--out", folder],
        "federated train": [a.text_path, "--out", folder],
        "lemof predict": [a.run, "--text", a.text_path, "--series", hourly, "--cohort", a.cohort_path, "--out", file],
    }.get(path)


def test_every_writing_command_refuses_an_existing_output_without_overwrite(assets, tmp_path, capsys):
    """Walks the typer app, so a command added later is in this test without being listed by hand."""
    from cli_process import run_alfia
    from reliability_testkit import snapshot

    hourly, srun = _series_assets(tmp_path / "series")
    failures = []
    for path in sorted(_writing_commands()):
        case = tmp_path / path.replace(" ", "_")
        case.mkdir()
        args = _refusal_args(path, case, assets, hourly, srun)
        if args is None:
            failures.append(f"alfia {path}: no refusal case here; add one to _refusal_args")
            continue
        before, run_before = snapshot(tmp_path), snapshot(assets.root)
        code, _, err = run_alfia([*path.split(), *args], capsys)
        if code != 2 or not any(r in err for r in REFUSALS) or "error: " not in err:
            failures.append(f"alfia {path}: exit {code}: {err[-300:]}")
        elif snapshot(tmp_path) != before or snapshot(assets.root) != run_before:
            failures.append(f"alfia {path}: refused, but changed a file")
    assert not failures, "\n".join(failures)


def test_train_help_states_each_recipes_values():
    """`alfia train --help` writes the recipes' values out (importing torch would slow every --help): they must
    be what the recipes and the config dataclasses give."""
    from alfia.cli.model import FIELDS, RECIPE_DEFAULTS, recipe_default
    from alfia.models import AlfiaConfig
    from alfia.training import TrainConfig
    from alfia.training.recipes import RECIPES

    model_fields = set(AlfiaConfig().to_dict()) | {"fusion_layers", "lora_r", "lora_alpha", "lora_dropout",
                                                   "lora_targets"}
    for option, shown in RECIPE_DEFAULTS.items():
        field = FIELDS.get(option, option)
        for name, recipe in RECIPES.items():
            if option in model_fields:
                value = AlfiaConfig.from_dict(dict(recipe.model)).to_dict()
            else:
                value = TrainConfig.from_dict(dict(recipe.train)).to_dict()
            for key in field.split("."):
                value = value[key]
            assert shown[name] == value, (option, name)
    assert recipe_default("epochs") == "cpu recipe: 8; paper recipe: 30; frozen recipe: 8"
    assert recipe_default("threads") == "the cores available"


def test_a_bad_option_is_one_error_line(capsys):
    from cli_process import run_alfia

    code, out, err = run_alfia(["cohort", "synthetic", "--seed", "-1"], capsys)
    assert code == 2 and err.startswith("error: Invalid value for '--seed'") and "╭" not in err
    code, out, err = run_alfia(["evaluate"], capsys)
    assert code == 2 and err.startswith("error: Missing argument 'RUN_DIR'")
