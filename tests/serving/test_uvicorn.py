"""`alfia serve` for real: uvicorn on a free loopback port in its own process, a request, then SIGTERM and a
graceful exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pandas as pd

import alfia


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uvicorn_serves_on_a_free_port_and_stops_on_sigterm(served, tmp_path):
    from alfia.inference import InferenceInput, load_run, predict

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(alfia.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "alfia", "serve", str(served.exports["default", "int8"]),
                                "--port", str(port), "--threads", "1", "--max-wait-ms", "2"],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not come up"
            time.sleep(0.2)
        texts = pd.read_parquet(served.text_path)["text"].tolist()[:5]
        response = httpx.post(f"{url}/predict", json={"texts": texts}, timeout=30)
        assert response.status_code == 200, response.text
        # int8 quantises activations with one scale per batch, so the reference is the same five texts as one batch
        run = load_run(served.exports["default", "int8"], num_threads=1)
        expected, _ = predict(run, InferenceInput(texts, np.arange(5)))
        np.testing.assert_allclose(response.json()["probabilities"], expected["prob"], rtol=0, atol=1e-9)
        assert httpx.post(f"{url}/predict", json={"texts": []}, timeout=30).status_code == 422
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    output = (tmp_path / "serve.log").read_text()
    # uvicorn re-raises the signal once it has shut down, so the status is SIGTERM's own: after a clean drain
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output and "Finished server process" in output
    assert "POST /predict 200" in output and "POST /predict 422" in output
    assert "stopped: 5 texts in 1 forward passes" in output  # the lifespan's drain ran: a graceful shutdown
    assert "Traceback" not in output
