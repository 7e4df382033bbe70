"""The analyze and robustness pages render in a real headless browser, from one file, with every figure drawn.

Skips when no Chromium/Chrome is installed (``apt-get install chromium-headless-shell`` gives one), as the
comparison report's browser test does (tests/evaluation/test_report_browser.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from evaluation.test_report_browser import _browser


@pytest.mark.parametrize("page, doc", [("analysed", "analysis.json"), ("robust", "robustness.json")])
def test_pages_render_self_contained_in_a_headless_browser(request, tmp_path, page, doc):
    from PIL import Image

    browser = _browser()
    folder = request.getfixturevalue(page)
    n_figures = len(json.loads((folder / doc).read_text())["figures"])
    html_file = next(folder.glob("*.html"))
    alone = tmp_path / "alone" / html_file.name  # away from its figures folder: it must need nothing beside it
    alone.parent.mkdir()
    shutil.copy(html_file, alone)
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--hide-scrollbars", "--allow-file-access-from-files"]
    dom = subprocess.run([*common, "--dump-dom", alone.as_uri()], capture_output=True, text=True, timeout=600)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<img") == n_figures and "<table>" in dom.stdout
    shot = tmp_path / "page.png"
    result = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,5000", alone.as_uri()],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    print(f"screenshot: {shot}")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[1] == 1280
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200, "the page rendered (nearly) blank"
