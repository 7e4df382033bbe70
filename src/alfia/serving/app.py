"""The HTTP service over a run or an export folder (``alfia serve``): FastAPI, one model, micro-batched.

    app = create_app("exports/alfia-int8", ServeSettings(max_wait_ms=5))
    POST /predict   {"texts": ["..."]} or {"rows": [{cohort row}, ...]}
                    -> {"probabilities", "decisions", "threshold", "model"} in input order
    GET  /health    {"status": "ok", ...}; 503 while shutting down
    GET  /metadata  the model card summary, cohort variant, training date, source SHA-256, limits

Probabilities are those ``alfia predict`` writes: the same ``predict`` call, calibrator and threshold. Rows are
encoded by the run's own template (``frame_to_input``), texts checked as a text table's are; a bad one is a 422
naming the field and its index, and nothing reaches the model unchecked. Errors never carry a stack trace or
the client's clinical text back; the server logs one line per request.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations as real types.
import contextlib
import logging
import os
import threading
import time
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd

from alfia.cohorts.schema import ID_COLUMN
from alfia.errors import AlfiaError
from alfia.inference import InferenceInput, LoadedRun, frame_to_input, load_run, predict
from alfia.runs import RunLayout
from alfia.serving.batcher import MicroBatcher, Overloaded, ShuttingDown
from alfia.text.table import is_empty_text

log = logging.getLogger("alfia.serve")


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of the service (``alfia serve`` options)."""

    max_batch: int = 64  # texts or rows in one request
    max_body_bytes: int = 1 << 20  # request body, bytes
    max_text_chars: int = 50_000  # one text, characters (the model reads max_length tokens of it)
    max_wait_ms: float = 5.0  # how long a batch waits for more requests
    batch_size: int = 64  # texts in one forward pass, across requests
    max_queue: int = 4096  # texts waiting before requests get 503
    threads: int | None = None  # model threads (None: the machine's cores)
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_body_bytes", "max_text_chars", "batch_size", "max_queue"):
            if int(getattr(self, name)) < 1:
                raise AlfiaError(f"serve: {name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise AlfiaError(f"serve: max_wait_ms must be >= 0, got {self.max_wait_ms}")


class InputError(Exception):
    """A request the model must not see: 422 with the field (and index) at fault."""

    def __init__(self, loc: list, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


# -------------------------------------------------------------------- request and response
def _request_model(settings: ServeSettings):
    from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, model_validator

    def visible(text: str) -> str:
        if is_empty_text(text):
            raise ValueError("the text is empty (only spaces or control characters)")
        return text

    def scalar(value: Any) -> Any:
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ValueError("a cohort value is a number, a string, true/false or null")
        return value

    Text = Annotated[StrictStr, Field(max_length=settings.max_text_chars), AfterValidator(visible)]
    Value = Annotated[Any, AfterValidator(scalar)]  # one JSON scalar per cohort column; the encoder checks it
    Batch = Field(default=None, min_length=1, max_length=settings.max_batch)

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: Annotated[list[Text] | None, Batch]
        rows: Annotated[list[dict[str, Value]] | None, Batch]

        @model_validator(mode="after")
        def _one_of(self):
            if (self.texts is None) == (self.rows is None):
                raise ValueError("give either 'texts' (clinical texts) or 'rows' (cohort rows), not both or neither")
            return self

    return PredictRequest


class _Encoder:
    """Cohort rows -> texts by the run's template; one at a time, so each request's warnings are its own."""

    def __init__(self, run: LoadedRun) -> None:
        self.run = run
        self._lock = threading.Lock()

    def __call__(self, rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        frame = pd.DataFrame.from_records(rows)
        if ID_COLUMN not in frame.columns:  # the service needs no stay id; the encoder does
            frame.insert(0, ID_COLUMN, np.arange(len(frame)))
        with self._lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                inputs = frame_to_input(frame, "rows", self.run)
            except AlfiaError as e:
                raise InputError(["body", "rows", *self._bad_row(frame)], str(e)) from None
        notes = list(dict.fromkeys(str(w.message) for w in caught))
        return inputs.texts, notes

    def _bad_row(self, frame: pd.DataFrame) -> list[int]:
        """The index of the first row that fails alone ([] when only the rows together fail, e.g. a repeated id)."""
        for i in range(len(frame)):
            try:
                frame_to_input(frame.iloc[[i]].reset_index(drop=True), "rows", self.run)
            except AlfiaError:
                return [i]
        return []


def model_info(run: LoadedRun) -> dict[str, Any]:
    """Which model answered: its name, how it runs, and the SHA-256 of the run it came from."""
    if run.export is not None:
        source_sha = run.export["source"]["sha256"]
    else:
        source_sha = RunLayout.of(run.run_dir).model_sha256()[0]
    return {"name": run.config.get("model_name") or run.run_dir.name, "backend": run.device_label,
            "source_sha256": source_sha}


def metadata(run: LoadedRun, settings: ServeSettings, info: dict) -> dict[str, Any]:
    from alfia.inference.export import run_summary

    summary = run.export["summary"] if run.export is not None else run_summary(RunLayout.of(run.run_dir), run.config)
    doc = {"model": info, "summary": summary, "cohort_variant": summary.get("cohort_variant"),
           "trained_at": summary.get("trained_at"), "source_sha256": info["source_sha256"],
           "threshold": run.threshold, "threshold_source": run.threshold_source,
           "calibration": run.calibrator.to_dict().get("method"), "max_length": run.max_length,
           "rows_template": run.template,
           "limits": {k: v for k, v in asdict(settings).items() if k not in ("threads", "device")}}
    if run.export is not None:
        model = run.export["model"]
        doc["export"] = {"created_at": run.export.get("created_at"), "precision": model.get("precision"),
                         "quantization": model.get("quantization"), "fusions": model.get("fusions"),
                         "check": run.export.get("check")}
    return doc


# -------------------------------------------------------------------- middleware (plain ASGI)
def _json_response(status: int, detail: Any, headers: list | None = None):
    import json

    body = json.dumps({"detail": detail}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         *(headers or [])]}
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """413 for a request body over ``max_bytes``, told by Content-Length or counted as it arrives."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body over {self.max_bytes} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            for message in _json_response(413, too_large):
                await send(message)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                for message in _json_response(413, too_large):
                    await send(message)
                return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestLog:
    """One log line per request: method, path, status, milliseconds, texts scored, request id."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        info = {"id": uuid.uuid4().hex[:12], "n": None}
        scope["alfia"] = info
        status = {"code": 500}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", info["id"].encode())]}
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            client = scope.get("client")
            n = "" if info["n"] is None else f" n={info['n']}"
            log.info("%s %s %d %.1fms%s id=%s client=%s", scope.get("method"), scope.get("path"), status["code"],
                     1000 * (time.perf_counter() - started), n, info["id"], client[0] if client else "-")


# -------------------------------------------------------------------- the app
def create_app(source: str | os.PathLike | LoadedRun, settings: ServeSettings | None = None):
    """The FastAPI app serving ``source`` (a run directory, an export folder, or a loaded run).

    The model is loaded here, so a bad folder fails before a port is bound."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    settings = settings or ServeSettings()
    run = source if isinstance(source, LoadedRun) else load_run(Path(source), device=settings.device,
                                                                  num_threads=settings.threads)
    info = model_info(run)
    about = metadata(run, settings, info)
    encode = _Encoder(run)

    def score(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        frame, _ = predict(run, InferenceInput(texts, np.arange(len(texts))), batch_size=settings.batch_size)
        return frame["prob"].to_numpy(dtype=float), frame["pred_label"].to_numpy(dtype=int)

    batcher = MicroBatcher(score, max_wait_s=settings.max_wait_ms / 1000.0, max_batch=settings.batch_size,
                           max_queue=settings.max_queue)
    state = {"status": "starting", "started": time.monotonic()}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        state["status"] = "ok"
        log.info("serving %s (%s) on /predict: threshold %.4f, micro-batches of up to %d texts, wait %.1f ms",
                 run.run_dir, info["backend"], run.threshold, settings.batch_size, settings.max_wait_ms)
        try:
            yield
        finally:
            state["status"] = "shutting down"
            await batcher.stop()  # answers what is queued before the model thread stops
            log.info("stopped: %d texts in %d forward passes", batcher.texts, batcher.batches)

    app = FastAPI(title="ALFIA", version=str(run.config.get("alfia_version", "")), lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.run, app.state.batcher, app.state.settings = run, batcher, settings
    PredictRequest = _request_model(settings)

    def _detail(errors) -> list[dict]:
        # loc, msg and type only: pydantic's 'input' would send the client's clinical text back
        return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse(status_code=422, content={"detail": _detail(exc.errors())})

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError):
        return JSONResponse(status_code=422, content={"detail": [{"loc": exc.loc, "msg": exc.message,
                                                                  "type": "value_error"}]})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        request_id = request.scope.get("alfia", {}).get("id", "-")
        log.error("request %s failed", request_id, exc_info=(type(exc), exc, exc.__traceback__))
        return JSONResponse(status_code=500, content={"detail": f"internal error (request {request_id}); the "
                                                                f"server log has the details"})

    @app.post("/predict")
    async def predict_endpoint(body: PredictRequest, request: Request):  # type: ignore[valid-type]
        notes: list[str] = []
        if body.texts is not None:
            texts = body.texts
        else:
            texts, notes = await run_in_threadpool(encode, body.rows)
        request.scope.get("alfia", {})["n"] = len(texts)
        try:
            probabilities, decisions = await batcher.submit(texts)
        except (Overloaded, ShuttingDown) as e:
            return JSONResponse(status_code=503, content={"detail": f"unavailable: {e}; retry later"},
                                headers={"Retry-After": "1"})
        except Exception as e:
            return await _internal(request, e)
        out = {"probabilities": probabilities.tolist(), "decisions": decisions.tolist(),
               "threshold": run.threshold, "model": info}
        if notes:
            out["warnings"] = notes
        return out

    @app.get("/health")
    async def health():
        doc = {"status": state["status"], "uptime_s": round(time.monotonic() - state["started"], 1),
               "queued_texts": batcher.pending, "forward_passes": batcher.batches, "texts_scored": batcher.texts,
               "model": info["name"], "backend": info["backend"]}
        return JSONResponse(status_code=200 if state["status"] == "ok" else 503, content=doc)

    @app.get("/metadata")
    async def get_metadata():
        return about

    # Added last = outermost: the log line sees every response, the body limit's 413s included.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestLog)
    return app


def serve(source: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000,
          settings: ServeSettings | None = None, log_level: str = "info", shutdown_timeout: float = 30.0) -> None:
    """Run the service with uvicorn until SIGINT/SIGTERM; then stop taking connections, let requests in flight
    finish (up to ``shutdown_timeout`` s), answer what is queued, and exit."""
    import uvicorn

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(getattr(logging, log_level.upper(), logging.INFO))
    app = create_app(source, settings)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=shutdown_timeout, backlog=2048)
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise AlfiaError(f"serve: could not listen on {host}:{port} (see the log above; is the port in use?)")
