"""`alfia export` and `alfia serve`: thin commands over alfia.inference.export and alfia.serving."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alfia.cli import Overwrite, app
from alfia.progress import make_console, step

console = make_console(stderr=True)


@app.command("export")
def export(
    run_dir: Path = typer.Argument(..., help="A trained ALFIA run directory."),
    out: Path = typer.Option(..., "--out", help="Export folder to create (written whole, or not at all)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="int8: dynamic int8 quantisation of the "
                                           "encoder's matrix products.", show_default="none: fp32"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Threads of the export and its check.",
                                          show_default="the cores available"),
    overwrite: Overwrite = False,
) -> None:
    """One ONNX graph (encoder with LoRA merged + ALF + ACH) with the run's tokenizer, calibrator, thresholds,
    config and model card: a folder `alfia predict`, `embed`, `serve` and `evaluate --external` read like the run."""
    from alfia.inference.export import check_export_target, export_run

    check_export_target(run_dir, out, overwrite=overwrite)  # before the model is loaded
    with step(f"exporting {run_dir}", console=console):
        record = export_run(run_dir, out, quantize=quantize, overwrite=overwrite, num_threads=threads)
    model, check = record["model"], record["check"]
    size_mb = (out / model["file"]).stat().st_size / 2**20
    console.print(f"{out / model['file']}: {model['precision']}, {size_mb:.1f} MB"
                  f"{'; fused ' + model['fusions'] if model['fusions'] else ''}. Against torch on "
                  f"{check['texts']} texts: largest logit difference {check['max_abs_difference']['logits']:.2g}. "
                  f"Source run SHA-256 {record['source']['sha256'][:16]}... in {out / 'export.json'}. "
                  f"Next: `alfia serve {out}`", highlight=False)


@app.command("serve")
def serve(
    source: Path = typer.Argument(..., help="A run directory or an export folder (alfia export)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port to listen on."),
    max_batch: int = typer.Option(64, "--max-batch", min=1, help="Most texts or rows in one request."),
    max_body_kb: int = typer.Option(1024, "--max-body-kb", min=1, help="Largest request body, KiB."),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", min=0, help="How long a micro-batch waits for more "
                                      "concurrent requests before it runs."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Most texts in one forward pass."),
    max_queue: int = typer.Option(4096, "--max-queue", min=1, help="Texts waiting before new requests get 503."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Model threads.",
                                          show_default="the cores available"),
    device: str = typer.Option("auto", help="Device of a run (an export always runs on the CPU)."),
    log_level: str = typer.Option("info", "--log-level"),
    shutdown_timeout: float = typer.Option(30.0, "--shutdown-timeout", min=0, help="Seconds requests in flight get to "
                                           "finish after SIGTERM/Ctrl-C."),
) -> None:
    """HTTP service: POST /predict ({"texts": [...]} or {"rows": [...]}), GET /health, GET /metadata."""
    from alfia.serving import ServeSettings
    from alfia.serving import serve as run_service

    settings = ServeSettings(max_batch=max_batch, max_body_bytes=max_body_kb * 1024, max_wait_ms=max_wait_ms,
                             batch_size=batch_size, max_queue=max_queue, threads=threads, device=device)
    run_service(source, host=host, port=port, settings=settings, log_level=log_level,
                shutdown_timeout=shutdown_timeout)
