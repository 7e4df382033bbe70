"""The package's import graph: stages follow the data flow, and no module imports itself back.

Every ``alfia`` import that can run is read from the source (module-level and inside functions alike), so a
lazy import cannot hide a circle or an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "alfia"

# The data flow, lowest first (README, "Layout"). A stage may import its own modules and any lower stage.
STAGES = (
    ("errors",),
    ("__init__", "atomic", "machine", "progress"),  # foundations (progress: bars and log lines of long steps)
    ("config_base",),  # the JSON config base every typed config derives from (it writes through atomic)
    ("cohorts",),
    ("runs", "outputs"),
    ("text",),
    ("models",),
    ("runtime",),
    # Below training: the loop stops on evaluation's val AUPRC and a run ends with evaluation's thresholds.
    ("evaluation",),
    ("training",),
    # federated: FedAvg with Flower over training's pieces (a run ends with training.run.finish_run)
    ("baselines", "series", "federated"),
    ("inference",),
    # LeMoF fuses the text (inference's load_run), series and tabular encoders: above the models it fuses.
    ("multimodal",),
    # Looks inside trained models (alfia analyze / robustness): it loads ALFIA runs and the zoo's MLP and saved models.
    ("analysis",),
    # The HTTP service over inference's load_run/predict (alfia serve); the CLI and nothing else imports it.
    ("serving",),
    ("api",),
    ("cli",),
    ("__main__",),  # python -m alfia
)
RANK = {name: rank for rank, names in enumerate(STAGES) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str, *, type_only: bool = False) -> set[str]:
    """The alfia modules ``path`` imports (``from alfia.x import y`` counts y when y is a module); with
    ``type_only``, also those imported under ``if TYPE_CHECKING:``."""
    found = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Imports under `if TYPE_CHECKING:` never run; they name types for the reader only.
    never_run = set() if type_only else {
        id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
        and ast.unparse(block.test).endswith("TYPE_CHECKING") for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in never_run:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "alfia"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "alfia":
                continue
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _graph(*, type_only: bool = False) -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path, name, type_only=type_only) if m in files and m != name}
            for name, path in files.items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_walk_sees_the_package():
    graph = _graph()
    assert "alfia.training.run" in graph and "alfia.runtime" in graph["alfia.training.run"]
    assert "alfia.runtime.forward" in graph["alfia.runtime"]  # a package re-exports its modules
    assert all(_stage(m) in RANK for m in graph), sorted({_stage(m) for m in graph} - set(RANK))


def test_no_stage_imports_a_later_one():
    upward = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                    if RANK[_stage(b)] > RANK[_stage(a)]
                    or (RANK[_stage(b)] == RANK[_stage(a)] and _stage(b) != _stage(a)))
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)


def test_inference_does_not_import_training():
    graph = _graph()
    assert not [b for a, targets in graph.items() if a.startswith("alfia.inference")
                for b in targets if b.startswith("alfia.training")]


def _circles(graph: dict[str, set[str]]) -> list[str]:
    # A package's __init__ re-exports its modules, and those import their siblings by full name, which
    # Python resolves without a circle; only edges between modules count.
    edges = {a: {b for b in targets if not (a == b.rsplit(".", 1)[0] or b == a.rsplit(".", 1)[0])}
             for a, targets in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return cycles


def test_no_import_circle():
    cycles = _circles(_graph())
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_no_import_circle_inside_a_package_even_through_type_only_imports():
    # An import under `if TYPE_CHECKING:` never runs, but a circle through one is still two modules that each
    # need the other (models.config -> poolers -> adaptive_layer_fusion -> config was one): none inside a package.
    cycles = [c for c in _circles(_graph(type_only=True)) if len({_stage(m) for m in c.split(" -> ")}) == 1]
    assert not cycles, "import circles (type-only imports included):\n" + "\n".join(cycles)


def test_the_circle_walk_sees_a_type_only_circle(tmp_path):
    # The walk itself: a planted circle through a TYPE_CHECKING import is found.
    assert _circles({"alfia.models.a": {"alfia.models.b"}, "alfia.models.b": {"alfia.models.a"}}) == [
        "alfia.models.a -> alfia.models.b -> alfia.models.a"]
    module = tmp_path / "b.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from alfia.models import a\n")
    assert "alfia.models.a" in _imports(module, "alfia.models.b", type_only=True)
    assert "alfia.models.a" not in _imports(module, "alfia.models.b")


def test_the_cli_registers_every_command_module_and_a_typo_is_an_error():
    import pytest

    from alfia.cli import COMMAND_MODULES, _register

    files = {p.stem for p in (PACKAGE / "cli").glob("*.py")} - {"__init__"}
    assert set(COMMAND_MODULES) == files
    with pytest.raises(ModuleNotFoundError, match="alfia.cli.evalution"):
        _register(("evalution",))
