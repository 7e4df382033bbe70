"""The comparison report renders in a real headless browser, from one file, with every figure drawn.

Skips when no Chromium/Chrome is installed (``apt-get install chromium-headless-shell`` gives one).
The screenshot stays in the test's tmp folder (printed with ``-s``) for a person to look at.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from alfia.evaluation import compare_runs

from .test_clinical_report import _cohort_file

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser installed (looked for {', '.join(BROWSERS)})")


def test_report_renders_self_contained_in_a_headless_browser(tmp_path, runs_folder, cohort):
    from PIL import Image

    browser = _browser()
    stay_id, split, label, _, _ = cohort
    _cohort_file(tmp_path / "cohort.parquet", stay_id, split, label)
    out = tmp_path / "report"
    compare_runs([runs_folder], out, n_boot=50, cohort=tmp_path / "cohort.parquet")
    page = out / "report.html"
    # The page alone, away from its figures folder: it must not need anything beside it.
    alone = tmp_path / "alone" / "report.html"
    alone.parent.mkdir()
    shutil.copy(page, alone)
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--hide-scrollbars", "--allow-file-access-from-files"]
    dom = subprocess.run([*common, "--dump-dom", alone.as_uri()], capture_output=True, text=True, timeout=600)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<img") == 5 and "Subgroups" in dom.stdout and "Decision curve" in dom.stdout
    shot = tmp_path / "report.png"
    result = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,6000", alone.as_uri()],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    print(f"screenshot: {shot}")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[1] == 1280
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 200, "the page rendered (nearly) blank"  # figures bring thousands of colours
