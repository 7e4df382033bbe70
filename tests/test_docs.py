"""Every ```bash and ```python block of README.md and docs/*.md runs here, on tiny data.

How a page runs
  Each page gets a fresh folder as its working directory, holding the files its blocks expect to exist
  (``PRELUDE``: copies of a session-wide base of 300 synthetic stays, their text, a trained tiny ALFIA run,
  two fast baselines). Blocks run in page order, so a later block may use what an earlier one wrote.
  ``bash`` blocks: backslash continuations are joined and ``#`` comments dropped; every command must be
  ``alfia ...`` (run in-process through the CLI's typer app, to spare a Python start-up per command) or
  a command listed in ``MAKE_TARGETS``. It must exit with status 0, unless ``EXPECTED_FAILURES`` names it.
  ``python`` blocks run with ``exec`` in that folder and must not raise. A command that would not return
  (``alfia serve``, which runs until it is stopped) or is not ``alfia`` (``curl`` against that server, the
  benchmark scripts) goes in a fenced block without a language (plain ```); docs/serving.md shows the service through
  a ``python`` block with FastAPI's TestClient instead, which runs here.

What is substituted, and why (explicit, applied to the block text before it runs)
  ``SUBSTITUTIONS``: real-data paths -> tiny files of the same format (a generated PhysioNet 2012 set);
  big synthetic cohorts -> 300 stays; baseline and boost commands -> ``--profile fast`` (the same code path
  with tiny models). ``TINY_TRAINING``: every ALFIA training a block starts (``alfia train``,
  ``ALFIAClassifier.fit``, ``make demo``) goes through a wrapper of ``alfia.training.train_run`` that swaps
  in the tiny random BERT of ``alfia.models.testing`` (2 layers), 1 epoch, 48 tokens, 1 thread; every
  other setting of the block is kept. ``make test`` is not run: it is the suite this test belongs to.
  The MIMIC-IV / eICU extraction page runs on the open demos in ../shared/data (integration; skipped
  without them), since an extraction cannot be faked by a smaller file of another format.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from shared_data import SHARED_DATA, shared_dataset

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
INTEGRATION_PAGES = {"docs/extraction.md"}

TINY_TRAINING = {"model": dict(n_fusion_layers=2, fusion_heads=2, classifier_heads=2, max_length=48),
                 "lora": dict(r=2), "train": dict(epochs=1, head_epochs=2, num_threads=1)}

# What each page expects in its working directory (copied from the session's base).
PRELUDE = {
    "docs/model.md": ["cohort.parquet", "cohort.manifest.json", "text.parquet", "text.manifest.json"],
    "docs/baselines.md": ["cohort.parquet", "cohort.manifest.json", "text.parquet", "text.manifest.json",
                          "runs/alfia"],
    "docs/serving.md": ["cohort.parquet", "cohort.manifest.json", "text.parquet", "text.manifest.json", "runs/alfia"],
    "docs/evaluation.md": ["cohort.parquet", "cohort.manifest.json", "text.parquet", "text.manifest.json",
                           "runs/alfia", "runs/baselines", "other_text.parquet", "other_text.manifest.json"],
}
# make demo runs the demo's own code with 300 stays, all of their training rows, on the tiny BERT;
# make test is not run (it is this very suite).
MAKE_TARGETS = {"make demo": ["--n-stays", "300", "--out", "demo_output", "--overwrite"],
                "make test": None}
EXPECTED_FAILURES = {
    # Without the optional extra the command stops with the install line the docs show next to it.
    "--engine autogluon": "pip install",
    # The page's run has finished, so --resume says there is nothing to continue (an interrupted one continues).
    "alfia train --resume runs/alfia": "there is nothing to resume",
}


def substitutions(tiny_physionet: Path) -> list[tuple[str, str]]:
    """(regex, replacement) pairs applied to every block before it runs; see the module docstring."""
    pn = "../shared/data/physionet2012/"
    return [
        (re.escape(pn + "set-a.tar.gz"), str(tiny_physionet / "set-a")),
        (re.escape(pn + "set-b.tar.gz"), str(tiny_physionet / "set-b")),
        (re.escape(pn + "Outcomes-a.txt"), str(tiny_physionet / "Outcomes-a.txt")),
        (re.escape(pn + "Outcomes-b.txt"), str(tiny_physionet / "Outcomes-b.txt")),
        # the other real sets are small: the docs read them where ../shared/data really is
        (re.escape("../shared/data/mimic-iv-demo"), str(SHARED_DATA / "mimic-iv-demo")),
        (re.escape("../shared/data/yaib-eicu-demo-mortality24"), str(SHARED_DATA / "yaib-eicu-demo-mortality24")),
        (r"--n (20000|3000)\b", "--n 300"),
        (r"\bn=(20000|3000)\b", "n=300"),
        (r"\balfia (baselines|boost) ", r"alfia \1 --profile fast "),
        (r'(alfia\.baselines\.fit\([^\n]*)\)', r'\1, profile="fast")'),
        (re.escape("/data/mimiciv/3.1"), str(SHARED_DATA / "mimic-iv-demo")),
        (re.escape("/data/eicu-crd/2.0"), str(SHARED_DATA / "eicu-demo")),
    ]


def code_blocks(page: str) -> list[tuple[str, str, int]]:
    """(language, code, line number) of every bash / python block of a page."""
    blocks, lines = [], (ROOT / page).read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w+)\s*$", lines[i])
        if m:
            start, body = i + 1, []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if m.group(1) in ("bash", "python"):
                blocks.append((m.group(1), "\n".join(body), start))
        i += 1
    return blocks


def shell_commands(code: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(shlex.join(words))
    return commands


# -- fixtures ------------------------------------------------------------------------------------
def _record(record_id: int, rng: np.random.Generator) -> str:
    lines = ["Time,Parameter,Value", f"00:00,RecordID,{record_id}", f"00:00,Age,{int(rng.integers(20, 90))}",
             f"00:00,Gender,{int(rng.integers(0, 2))}", f"00:00,Height,{int(rng.integers(150, 195))}",
             f"00:00,ICUType,{int(rng.integers(1, 5))}", f"00:00,Weight,{rng.uniform(50, 110):.1f}"]
    for hour in range(0, 30, 3):
        t = f"{hour:02d}:{int(rng.integers(0, 60)):02d}"
        lines += [f"{t},HR,{int(rng.integers(55, 130))}", f"{t},Temp,{rng.uniform(35.5, 39.5):.1f}",
                  f"{t},GCS,{int(rng.integers(3, 16))}", f"{t},MAP,{int(rng.integers(55, 110))}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def tiny_physionet(tmp_path_factory) -> Path:
    """Two PhysioNet 2012 sets in PhysioNet's layout (a folder of <RecordID>.txt + an outcomes file)."""
    root = tmp_path_factory.mktemp("physionet2012")
    rng = np.random.default_rng(0)
    for letter, first in (("a", 132000), ("b", 142000)):
        folder = root / f"set-{letter}"
        folder.mkdir()
        rows = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
        for rid in range(first, first + 120):
            (folder / f"{rid}.txt").write_text(_record(rid, rng))
            died = int(rid % 4 == 0)
            rows.append(f"{rid},{int(rng.integers(5, 25))},{int(rng.integers(0, 15))},{int(rng.integers(2, 30))},"
                        f"{-1 if not died else int(rng.integers(2, 30))},{died}")
        (root / f"Outcomes-{letter}.txt").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_backbone_path(tmp_path_factory) -> str:
    from alfia.models.testing import tiny_backbone

    return str(tiny_backbone(tmp_path_factory.mktemp("backbone"), layers=2))


@pytest.fixture
def tiny_training(monkeypatch, tiny_backbone_path):
    """Every ALFIA training in this test runs on the tiny BERT (TINY_TRAINING), other settings kept.

    ``train_run`` is swapped where it is defined and where the package re-exports it, and every caller imports
    it when it runs. A caller that bound the real one earlier (a module-level import) would train at full size
    and pass slowly, so ``prepare_run``, which every training starts with whatever name reached it, refuses a
    training that did not come through the wrapper.
    """
    import alfia.training
    import alfia.training.run

    real, real_prepare = alfia.training.run.train_run, alfia.training.run.prepare_run
    inside = []

    def train_run(text_path, out_dir, model_config=None, train_config=None, **kwargs):
        if model_config is not None:
            lora = dataclasses.replace(model_config.lora, **TINY_TRAINING["lora"])
            model_config = dataclasses.replace(model_config, backbone=tiny_backbone_path, lora=lora,
                                               **TINY_TRAINING["model"])
        if train_config is not None:
            train_config = dataclasses.replace(train_config, **TINY_TRAINING["train"])
        inside.append(out_dir)
        try:
            return real(text_path, out_dir, model_config, train_config, **kwargs)
        finally:
            inside.pop()

    def prepare_run(*args, **kwargs):
        assert inside, ("an ALFIA training started without the tiny-training wrapper (a caller bound "
                                  "alfia.training.train_run before the test swapped it)")
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(alfia.training, "train_run", train_run)
    monkeypatch.setattr(alfia.training.run, "train_run", train_run)
    monkeypatch.setattr(alfia.training.run, "prepare_run", prepare_run)


@pytest.fixture(scope="session")
def base(tmp_path_factory, tiny_backbone_path) -> Path:
    """The files PRELUDE copies: 300 synthetic stays, text, a tiny ALFIA run, two fast baselines."""
    import alfia
    import alfia.baselines

    folder = tmp_path_factory.mktemp("docs-base")
    cohort = alfia.cohort.synthetic(n=300, seed=42, out=folder / "cohort.parquet")
    texts = alfia.encode(cohort, folder / "text.parquet")
    alfia.encode(alfia.cohort.synthetic(n=200, seed=7, out=folder / "other.parquet"), folder / "other_text.parquet")
    alfia.ALFIAClassifier(backbone=tiny_backbone_path, run_dir=folder / "runs" / "alfia", epochs=1, max_length=48,
                          n_fusion_layers=2, fusion_heads=2, classifier_heads=2, lora_r=2, num_threads=1).fit(texts)
    alfia.baselines.fit(cohort, models=["LightGBM", "LinearModel"], out=folder / "runs" / "baselines",
                        profile="fast", n_boot=50)
    return folder


# -- running -------------------------------------------------------------------------------------
def _run_alfia(command: str) -> None:
    from typer.testing import CliRunner

    from alfia.cli import _register, app
    from alfia.errors import AlfiaError

    _register()
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    expected = next((msg for key, msg in EXPECTED_FAILURES.items() if key in command), None)
    if expected is not None:
        assert isinstance(result.exception, AlfiaError) and expected in str(result.exception), (command, result.output)
        return
    assert result.exit_code == 0, f"`{command}` failed:\n{result.output}\n{result.exception!r}"


def _run_make(command: str) -> None:
    args = MAKE_TARGETS[command]
    if args is not None:  # make demo
        from typer.testing import CliRunner

        from alfia.cli import _register, app

        _register()
        result = CliRunner().invoke(app, ["demo", *args])
        assert result.exit_code == 0, f"make demo failed:\n{result.output}\n{result.exception!r}"


def run_page(page: str, folder: Path, tiny_physionet: Path) -> int:
    rules = substitutions(tiny_physionet)
    ran = 0
    for language, code, line in code_blocks(page):
        for pattern, replacement in rules:
            code = re.sub(pattern, replacement, code)
        if language == "python":
            namespace = {"__name__": f"docs_block_{line}"}
            exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102 - the docs' own code
            ran += 1
            continue
        for command in shell_commands(code):
            started = time.perf_counter()
            print(f"{page}:{line}: {command}", flush=True)
            if command.startswith("alfia "):
                _run_alfia(command)
            elif command in MAKE_TARGETS:
                _run_make(command)
            else:
                raise AssertionError(f"{page}:{line}: `{command}` is neither an alfia command nor in MAKE_TARGETS")
            print(f"  {time.perf_counter() - started:.1f} s", flush=True)
            ran += 1
    return ran


def _prepare(page: str, folder: Path, base: Path | None) -> None:
    for name in PRELUDE.get(page, []):
        source, target = base / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)


def real_data_sets(page: str) -> list[str]:
    """The real data sets under ../shared/data a page's blocks read as they are (PhysioNet 2012 is
    replaced by tiny records; MIMIC-IV, eICU and the YAIB export are read where they are)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    named = set(re.findall(r"\.\./shared/data/([\w.-]+)", text)) - {"physionet2012"}
    named |= {"mimic-iv-demo"} if "/data/mimiciv/3.1" in text else set()
    named |= {"eicu-demo"} if "/data/eicu-crd/2.0" in text else set()
    return sorted(named)


@pytest.mark.parametrize("page", [p for p in PAGES if p not in INTEGRATION_PAGES])
def test_docs_code_blocks_run(page, tmp_path, monkeypatch, tiny_physionet, tiny_training, request):
    for name in real_data_sets(page):
        shared_dataset(name)  # skips, naming the folder, when ../shared/data is not beside the repository
    base = request.getfixturevalue("base") if page in PRELUDE else None
    _prepare(page, tmp_path, base)
    monkeypatch.chdir(tmp_path)
    assert run_page(page, tmp_path, tiny_physionet) > 0 or not code_blocks(page)


@pytest.mark.integration
@pytest.mark.parametrize("page", sorted(INTEGRATION_PAGES))
def test_extraction_docs_run_on_the_open_demos(page, tmp_path, monkeypatch, tiny_physionet):
    for name in real_data_sets(page):
        shared_dataset(name)
    monkeypatch.chdir(tmp_path)
    assert run_page(page, tmp_path, tiny_physionet) > 0


def test_every_page_is_covered_and_readme_stays_short():
    assert (ROOT / "README.md").stat().st_size <= 8_500
    for page in PAGES:
        for language, code, line in code_blocks(page):
            if language == "bash":
                for command in shell_commands(code):
                    assert command.startswith("alfia ") or command in MAKE_TARGETS, f"{page}:{line}: {command}"
    assert os.path.exists(ROOT / "docs" / "api.md")
