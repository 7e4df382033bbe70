"""Load and soak test of `alfia serve` (issue 22): concurrent one-stay clients on 127.0.0.1, for a bounded time.

    .venv/bin/python benchmarks/serve_load.py [SOURCE] [--texts runs/benchmarks/physionet2012/text.parquet]
        [--clients 100] [--duration 60] [--malformed 0.05] [--threads 2] [--max-wait-ms 5] [--think-ms 0]
        [--work-dir runs/benchmarks/serve_load]

SOURCE is a run or an export folder (default: the int8 export benchmarks/export_speed.py writes). The script
starts `alfia serve SOURCE` in its own process on a free loopback port, waits for /health, warms it up, and then
runs CLIENTS concurrent clients for DURATION seconds. Each client sends one stay's text per request, waits for
the answer (and THINK_MS more), and sends the next; a MALFORMED share of requests is bad on purpose (invalid
JSON, an empty list, a blank text, a number for a text, a body over the size limit, an unknown field) and must be
answered 422 or 413. Every client stops by itself at the deadline; the service is then stopped with SIGTERM.

Measured: latency p50/p95/p99/max of the valid requests, throughput (requests and stays per second), errors
(any valid request not answered 200, any bad one not answered 422/413, timeouts, refused connections), the
server's RSS every 0.5 s (min, max, last; the series is saved), forward passes the service made (texts per
pass: the micro-batching), the 1-minute load average before and after, and the client's own CPU time (it shares
the 2 cores with the server). Results: WORK_DIR/serve_load.json and a summary on stdout. Targets: p99 <= 300 ms
for 100 concurrent one-stay clients on 2 cores, with 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "benchmarks"
MALFORMED = ("invalid-json", "empty-list", "blank-text", "number-text", "oversize", "unknown-field")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _bad_request(kind: str, text: str, max_body: int) -> tuple[bytes, set[int]]:
    """(body, the statuses that count as a correct answer) of one malformed request."""
    if kind == "invalid-json":
        return b'{"texts": ["' + text[:40].encode() + b'"', {422}
    if kind == "empty-list":
        return b'{"texts": []}', {422}
    if kind == "blank-text":
        return json.dumps({"texts": [text, "   "]}).encode(), {422}
    if kind == "number-text":
        return b'{"texts": [42]}', {422}
    if kind == "oversize":
        return json.dumps({"texts": ["x" * (max_body + 1)]}).encode(), {413}
    return json.dumps({"texts": [text], "priority": "urgent"}).encode(), {422}


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self.stop_event = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                rss = self.process.memory_info().rss / 2**20
            except Exception:  # the process ended
                return
            self.samples.append((round(time.monotonic() - self.started_at, 2), round(rss, 1)))
            self.stop_event.wait(self.interval)


async def _load(url: str, texts: list[str], args, max_body: int) -> dict:
    import httpx2 as httpx

    latencies: list[float] = []
    counts = {"valid": 0, "valid_ok": 0, "malformed": 0, "malformed_ok": 0}
    errors: dict[str, int] = {}
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    deadline = time.monotonic() + args.duration

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def client(index: int, http) -> None:
        rng = random.Random(index)
        while time.monotonic() < deadline:
            text = texts[rng.randrange(len(texts))]
            bad = rng.random() < args.malformed
            if bad:
                kind = MALFORMED[rng.randrange(len(MALFORMED))]
                body, expected = _bad_request(kind, text, max_body)
            else:
                kind, body, expected = "valid", json.dumps({"texts": [text]}).encode(), {200}
            started = time.perf_counter()
            try:
                response = await http.post(f"{url}/predict", content=body, headers=headers)
                status = response.status_code
                if status == 200:
                    payload = response.json()
                    if len(payload.get("probabilities", [])) != 1:
                        status = -1  # a 200 without one probability is wrong too
            except httpx.TimeoutException:
                status = "timeout"
            except httpx.TransportError as e:
                status = type(e).__name__
            elapsed = 1000 * (time.perf_counter() - started)
            counts["malformed" if bad else "valid"] += 1
            if status in expected:
                counts["malformed_ok" if bad else "valid_ok"] += 1
                if not bad:
                    latencies.append(elapsed)
            else:
                error(f"{kind}: {status}")
            if args.think_ms:
                await asyncio.sleep(args.think_ms / 1000)

    async with httpx.AsyncClient(timeout=args.timeout, limits=limits) as http:
        started = time.monotonic()
        tasks = [asyncio.create_task(client(i, http)) for i in range(args.clients)]
        # bounded: every client stops at the deadline; a request in flight then has at most `timeout` seconds
        done, pending = await asyncio.wait(tasks, timeout=args.duration + args.timeout + 5)
        for task in pending:
            task.cancel()
        wall = time.monotonic() - started
    return {"latencies_ms": latencies, "counts": counts, "errors": errors, "wall_s": wall,
            "clients_left_running": len(pending)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, nargs="?", default=WORK / "export_speed" / "export-int8")
    parser.add_argument("--texts", type=Path, default=WORK / "physionet2012" / "text.parquet")
    parser.add_argument("--split", default="test", help="texts of this split are sent (all if the table has none)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--malformed", type=float, default=0.05, help="share of deliberately bad requests")
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause of a client between its requests")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one request may take")
    parser.add_argument("--threads", type=int, default=None, help="model threads of the service")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-body-kb", type=int, default=1024)
    parser.add_argument("--server-log-level", default="info", help="info: the service logs its line per request")
    parser.add_argument("--work-dir", type=Path, default=WORK / "serve_load")
    args = parser.parse_args(argv)

    import pandas as pd
    import psutil

    import httpx2 as httpx

    for path in (args.source, args.texts):
        if not path.exists():
            raise SystemExit(f"{path}: not found (benchmarks/export_speed.py writes the default export)")
    df = pd.read_parquet(args.texts)
    if "split" in df.columns and (df["split"] == args.split).any():
        df = df[df["split"] == args.split]
    texts = df["text"].tolist()
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [sys.executable, "-m", "alfia", "serve", str(args.source), "--port", str(port),
               "--max-wait-ms", str(args.max_wait_ms), "--batch-size", str(args.batch_size),
               "--max-body-kb", str(args.max_body_kb), "--log-level", args.server_log_level]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    log_path = work / "server.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            up_by = time.monotonic() + 300
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"the service exited ({server.returncode}); see {log_path}")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > up_by:
                    raise SystemExit(f"the service did not come up in 300 s; see {log_path}")
                time.sleep(0.25)
            for text in texts[:16]:  # warm-up
                httpx.post(f"{url}/predict", json={"texts": [text]}, timeout=args.timeout)
            before = httpx.get(f"{url}/health", timeout=5).json()
            loaded_at = time.monotonic() - sampler.started_at  # RSS from here on: the loaded, warm service
            load_before = os.getloadavg()[0]
            cpu_before = psutil.Process().cpu_times()
            result = asyncio.run(_load(url, texts, args, args.max_body_kb * 1024))
            cpu_after = psutil.Process().cpu_times()
            load_after = os.getloadavg()[0]
            after = httpx.get(f"{url}/health", timeout=5).json()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                exit_code = server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                exit_code = "killed after 60 s"
            sampler.stop_event.set()
            sampler.join(timeout=5)

    latencies = result["latencies_ms"]
    counts = result["counts"]
    passes = after["forward_passes"] - before["forward_passes"]
    scored = after["texts_scored"] - before["texts_scored"]
    rss = [mb for at, mb in sampler.samples if at >= loaded_at]
    summary = {
        "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": str(date.today()), "source": str(args.source), "backend": after.get("backend"),
        "clients": args.clients, "duration_s": args.duration, "think_ms": args.think_ms,
        "max_wait_ms": args.max_wait_ms, "threads": args.threads, "wall_s": round(result["wall_s"], 1),
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95),
                       "p99": _percentile(latencies, 99), "max": max(latencies) if latencies else None},
        "throughput": {"requests_per_s": (counts["valid"] + counts["malformed"]) / result["wall_s"],
                       "stays_per_s": counts["valid_ok"] / result["wall_s"]},
        "counts": counts, "errors": result["errors"], "error_total": sum(result["errors"].values()),
        "clients_left_running": result["clients_left_running"],
        "forward_passes": passes, "texts_per_pass": scored / passes if passes else None,
        "server_rss_mb": {"under_load_from_s": round(loaded_at, 1), "min": min(rss) if rss else None,
                          "max": max(rss) if rss else None,
                          "last": rss[-1] if rss else None, "series": sampler.samples},
        "load_average": [load_before, load_after],
        "client_cpu_s": (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system),
        "server_exit": exit_code,
    }
    from alfia.atomic import write_json_atomic

    write_json_atomic(work / "serve_load.json", summary)
    lat = summary["latency_ms"]
    fmt = (lambda x: "-" if x is None else f"{x:.0f}")
    print(f"{args.clients} clients for {args.duration:.0f} s on {summary['backend']}: p50 {fmt(lat['p50'])} ms, "
          f"p95 {fmt(lat['p95'])} ms, p99 {fmt(lat['p99'])} ms, max {fmt(lat['max'])} ms; "
          f"{summary['throughput']['stays_per_s']:.1f} stays/s; {counts['valid']} valid + {counts['malformed']} "
          f"malformed requests, {summary['error_total']} errors {result['errors'] or ''}; "
          f"{summary['texts_per_pass'] or 0:.1f} texts per forward pass; server RSS "
          f"{fmt(summary['server_rss_mb']['min'])}-{fmt(summary['server_rss_mb']['max'])} MB; load average "
          f"{load_before:.1f} -> {load_after:.1f}; client CPU {summary['client_cpu_s']:.0f} s; "
          f"server exit {exit_code}")
    print(f"-> {work / 'serve_load.json'} (server log: {log_path})", file=sys.stderr)


if __name__ == "__main__":
    main()
