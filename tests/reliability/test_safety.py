"""Safety rules read off the package's own source, so a later edit cannot quietly break them:

- every ``torch.load`` passes ``weights_only=True`` (no arbitrary code from a weights file);
- nothing unpickles: no ``pickle``/``joblib``/``dill``/``cloudpickle`` loads, ``pd.read_pickle``,
  ``np.load(allow_pickle=True)``;
- no ``shell=True``, ``os.system`` or ``os.popen`` (no shell between user paths and a command);
- archives are read member by member, never extracted (``extract``/``extractall``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from reliability_testkit import record_text, write_outcomes, write_tar

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "alfia"
UNPICKLERS = {"pickle", "joblib", "dill", "cloudpickle", "_pickle", "cPickle"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def violations(source: str, filename: str = "<src>") -> list[str]:
    """Every unsafe call in ``source``, as "file:line: what"."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in UNPICKLERS:
                    found.append(f"{filename}:{node.lineno}: imports {name}")
            continue
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        where = f"{filename}:{node.lineno}"
        if last == "load" and name.split(".")[0] == "torch" and not _true(_kw(node, "weights_only")):
            found.append(f"{where}: {name} without weights_only=True")
        if last in ("load", "loads", "Unpickler") and name.split(".")[0] in UNPICKLERS:
            found.append(f"{where}: {name} unpickles")
        if last == "read_pickle":
            found.append(f"{where}: {name} unpickles")
        if last == "load" and _true(_kw(node, "allow_pickle")):
            found.append(f"{where}: {name}(allow_pickle=True)")
        if _true(_kw(node, "shell")):
            found.append(f"{where}: {name}(shell=True)")
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if name in ("os.system", "os.popen") or method in ("extractall", "extract"):
            found.append(f"{where}: {name}")
    return found


def test_the_package_has_no_unsafe_loads_shells_or_extractions():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 40
    found = [v for f in files for v in violations(f.read_text(encoding="utf-8"), str(f.relative_to(PACKAGE)))]
    assert found == []


@pytest.mark.parametrize("snippet", [
    "import torch\ntorch.load(p)",
    "import torch\ntorch.load(p, weights_only=False)",
    "import pickle\npickle.load(f)",
    "import joblib\njoblib.load(p)",
    "import pandas as pd\npd.read_pickle(p)",
    "import numpy as np\nnp.load(p, allow_pickle=True)",
    "import subprocess\nsubprocess.run(cmd, shell=True)",
    "import os\nos.system('ls ' + p)",
    "import tarfile\ntarfile.open(p).extractall(d)",
])
def test_the_checker_sees_each_unsafe_pattern(snippet):
    assert violations(snippet)


def test_the_checker_passes_the_safe_forms():
    assert violations("import torch\ntorch.load(p, map_location='cpu', weights_only=True)\n"
                      "import subprocess\nsubprocess.run([sys.executable, '-c', code])\n"
                      "tar.extractfile(member).read()") == []


def test_a_tar_with_escaping_members_writes_nothing_outside(tmp_path):
    """The PhysioNet reader refuses such an archive and never writes a member anywhere."""
    from alfia.cohorts.sources.physionet2012 import build_physionet2012
    from alfia.errors import AlfiaError

    inside = tmp_path / "inside"
    inside.mkdir()
    escape = tmp_path / "escaped.txt"
    tar = write_tar(inside / "set.tar.gz", {"1.txt": record_text(1), "../escaped.txt": record_text(2),
                                            f"{tmp_path}/abs.txt": record_text(3)})
    outcomes = write_outcomes(inside / "o.txt", [1, 2, 3])
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(AlfiaError, match=r"escaped\.txt: member path points outside the archive"):
        build_physionet2012([tar], [outcomes])
    assert not escape.exists() and not (tmp_path / "abs.txt").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
