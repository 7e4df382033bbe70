"""`alfia serve` through FastAPI's TestClient: the round trip equals `alfia predict`, bad requests get a 422
naming the field and index, limits, health and metadata, errors without stack traces, one log line per
request, and micro-batching of concurrent requests."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from cli_process import run_alfia

from alfia.serving import MicroBatcher, Overloaded, ServeSettings, ShuttingDown, create_app


@pytest.fixture(scope="module")
def client(served):
    app = create_app(served.exports["lora", "fp32"], ServeSettings(threads=1, max_batch=100, max_body_bytes=200_000))
    with TestClient(app) as c:
        yield c


def _rows(served, n=None) -> list[dict]:
    frame = served.cohort.drop(columns=["hospital_expire_flag", "split"])
    return json.loads((frame if n is None else frame.head(n)).to_json(orient="records"))


def _alfia_predict(source, input_path, out, capsys) -> pd.DataFrame:
    code, _, err = run_alfia(["predict", source, "--input", input_path, "--out", out, "--threads", "1"], capsys)
    assert code == 0, err
    return pd.read_parquet(out)


def test_texts_round_trip_equals_alfia_predict(served, client, tmp_path, capsys):
    expected = _alfia_predict(served.exports["lora", "fp32"], served.text_path, tmp_path / "p.parquet", capsys)
    texts = pd.read_parquet(served.text_path)["text"].tolist()
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    np.testing.assert_allclose(body["probabilities"], expected["prob"], rtol=0, atol=1e-9)
    assert body["decisions"] == expected["pred_label"].tolist()
    assert body["threshold"] == pytest.approx(json.loads(
        (served.exports["lora", "fp32"] / "thresholds.json").read_text())["operating_points"]["f1"]["threshold"])
    assert body["model"]["source_sha256"] == json.loads(
        (served.exports["lora", "fp32"] / "export.json").read_text())["source"]["sha256"]
    # a few texts, in any order, get the same numbers as in the full batch (up to float rounding)
    order = [5, 0, 61, 3]
    few = client.post("/predict", json={"texts": [texts[i] for i in order]}).json()
    np.testing.assert_allclose(few["probabilities"], expected["prob"].to_numpy()[order], rtol=0, atol=1e-6)


def test_rows_are_encoded_by_the_run_template(served, client, tmp_path, capsys):
    expected = _alfia_predict(served.exports["lora", "fp32"], served.cohort_path, tmp_path / "p.parquet", capsys)
    response = client.post("/predict", json={"rows": _rows(served)})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["probabilities"], expected["prob"], rtol=0, atol=1e-9)
    assert "warnings" not in response.json()
    partial = client.post("/predict", json={"rows": [{k: v for k, v in row.items() if k != "apsiii"}
                                                     for row in _rows(served, 2)]}).json()
    assert any("apsiii" in w for w in partial["warnings"])  # absent predictors are written as missing, and said so


def test_a_run_directory_is_served_too(served, tmp_path, capsys):
    expected = _alfia_predict(served.runs["default"], served.text_path, tmp_path / "p.parquet", capsys)
    texts = pd.read_parquet(served.text_path)["text"].tolist()
    with TestClient(create_app(served.runs["default"], ServeSettings(threads=1, max_batch=100))) as c:
        body = c.post("/predict", json={"texts": texts}).json()
        meta = c.get("/metadata").json()
    np.testing.assert_allclose(body["probabilities"], expected["prob"], rtol=0, atol=1e-9)
    assert body["model"]["backend"] == "cpu" and "export" not in meta
    from alfia.runs import RunLayout

    assert meta["source_sha256"] == RunLayout.of(served.runs["default"]).model_sha256()[0]


@pytest.mark.parametrize("body, loc, words", [
    ({"texts": []}, ["body", "texts"], "at least 1"),
    ({"texts": ["a text", "   \t"]}, ["body", "texts", 1], "empty"),
    ({"texts": ["a text", "b", 7]}, ["body", "texts", 2], "valid string"),
    ({"texts": "one text"}, ["body", "texts"], "valid list"),
    ({"texts": ["a"], "rows": [{"stay_id": 1}]}, ["body"], "either 'texts'"),
    ({}, ["body"], "either 'texts'"),
    ({"texts": ["a"], "priority": "high"}, ["body", "priority"], "Extra inputs"),
    ({"rows": [{"stay_id": 1}, [1, 2]]}, ["body", "rows", 1], "dictionary"),
    ({"rows": [{"stay_id": 1, "admission_age": [60]}]}, ["body", "rows", 0, "admission_age"], ""),
])
def test_bad_requests_get_422_naming_field_and_index(client, body, loc, words):
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == loc and words in detail[0]["msg"], detail
    assert "input" not in detail[0]  # the client's text is never echoed back


def test_a_bad_cohort_row_is_named(served, client):
    rows = _rows(served, 3)
    rows[1]["admission_age"] = "old"
    detail = client.post("/predict", json={"rows": rows}).json()["detail"][0]
    assert detail["loc"] == ["body", "rows", 1] and "'admission_age'" in detail["msg"] and "not a number" in detail["msg"]
    rows = _rows(served, 3)
    rows[2]["stay_id"] = rows[0]["stay_id"]  # wrong only together: the list is named, not a row
    detail = client.post("/predict", json={"rows": rows}).json()["detail"][0]
    assert detail["loc"] == ["body", "rows"] and "repeats" in detail["msg"]
    detail = client.post("/predict", json={"rows": [{"stay_id": 1, "colour": "red"}]}).json()["detail"][0]
    assert detail["loc"] == ["body", "rows", 0] and "predictors" in detail["msg"]


def test_malformed_json_and_wrong_methods(client):
    response = client.post("/predict", content=b'{"texts": ["a"', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "json_invalid"
    assert client.get("/predict").status_code == 405
    assert client.get("/nowhere").status_code == 404


def test_limits_on_batch_and_body_size(served):
    settings = ServeSettings(threads=1, max_batch=4, max_body_bytes=2_000, max_text_chars=500)
    with TestClient(create_app(served.exports["lora", "int8"], settings)) as c:
        assert c.post("/predict", json={"texts": ["a"] * 4}).status_code == 200
        too_many = c.post("/predict", json={"texts": ["a"] * 5})
        assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["body", "texts"]
        assert "at most 4" in too_many.json()["detail"][0]["msg"]
        long_text = c.post("/predict", json={"texts": ["a", "b" * 501]})
        assert long_text.status_code == 422 and long_text.json()["detail"][0]["loc"] == ["body", "texts", 1]
        big = c.post("/predict", json={"texts": ["word " * 500]})
        assert big.status_code == 413 and "2000 bytes" in big.json()["detail"]

        def chunks():  # no Content-Length: the limit counts the bytes as they arrive
            yield b'{"texts": ["'
            for _ in range(10):
                yield b"x" * 300
            yield b'"]}'

        chunked = c.post("/predict", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        assert c.get("/health").json()["status"] == "ok"  # still serving


def test_health_and_metadata(served, client):
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["backend"] == "cpu, onnxruntime fp32"
    meta = client.get("/metadata").json()
    record = json.loads((served.exports["lora", "fp32"] / "export.json").read_text())
    assert meta["source_sha256"] == record["source"]["sha256"]
    assert meta["cohort_variant"] == "mimic" and meta["rows_template"] == "mimic"
    assert meta["trained_at"] == json.loads((served.runs["lora"] / "config.json").read_text())["created_at"]
    assert meta["summary"]["finetune"] == "lora" and meta["export"]["precision"] == "fp32"
    assert meta["limits"]["max_batch"] == 100 and meta["calibration"] == "platt"


def test_an_internal_error_carries_no_stack_trace(served, caplog):
    with TestClient(create_app(served.exports["lora", "fp32"], ServeSettings(threads=1))) as c:
        def broken(texts):
            raise RuntimeError("secret detail of the model thread")

        c.app.state.batcher.score = broken
        with caplog.at_level(logging.INFO, logger="alfia.serve"):
            response = c.post("/predict", json={"texts": ["a text"]})
        assert response.status_code == 500
        assert "secret" not in response.text and "Traceback" not in response.text
        request_id = response.headers["x-request-id"]
        assert request_id in response.json()["detail"]
        assert any("secret detail" in r.getMessage() or (r.exc_info and "secret detail" in str(r.exc_info[1]))
                   for r in caplog.records)  # the server log has it
        assert c.get("/health").json()["status"] == "ok"


def test_one_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="alfia.serve"):
        client.post("/predict", json={"texts": ["a text", "another"]})
        client.post("/predict", json={"texts": []})
        client.get("/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "alfia.serve"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("POST /predict 200 ") and " n=2 " in lines[0]
    assert lines[1].startswith("POST /predict 422 ") and lines[2].startswith("GET /health 200 ")
    assert all("a text" not in line for line in lines)  # no clinical text in the log


def test_concurrent_requests_share_forward_passes(served):
    texts = pd.read_parquet(served.text_path)["text"].tolist()
    settings = ServeSettings(threads=1, max_wait_ms=300)
    with TestClient(create_app(served.exports["default", "fp32"], settings)) as c:
        alone = c.post("/predict", json={"texts": texts[:12]}).json()["probabilities"]
        before = c.get("/health").json()["forward_passes"]
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda t: c.post("/predict", json={"texts": [t]}).json(), texts[:12]))
        passes = c.get("/health").json()["forward_passes"] - before
    assert passes < 12, passes
    np.testing.assert_allclose([a["probabilities"][0] for a in answers], alone, rtol=0, atol=1e-6)


# -------------------------------------------------------------------- the micro-batcher alone
def test_micro_batcher_orders_slices_and_drains_on_stop():
    calls = []

    def score(texts):
        calls.append(list(texts))
        return np.array([float(t) for t in texts]), np.array([int(t) % 2 for t in texts])

    async def main():
        batcher = MicroBatcher(score, max_wait_s=0.05, max_batch=5)
        await batcher.start()
        jobs = [asyncio.ensure_future(batcher.submit([str(i), str(i + 100)])) for i in range(4)]
        results = await asyncio.gather(*jobs)
        late = asyncio.ensure_future(batcher.submit(["7"]))
        await asyncio.sleep(0)
        await batcher.stop()  # the queued request is answered before the model thread stops
        with pytest.raises(ShuttingDown):
            await batcher.submit(["8"])
        return results, await late

    results, late = asyncio.run(main())
    for i, (prob, label) in enumerate(results):
        assert prob.tolist() == [i, i + 100] and label.tolist() == [i % 2, i % 2]
    assert late[0].tolist() == [7.0]
    assert [len(c) for c in calls] == [4, 4, 1]  # at most max_batch=5 texts a pass; a request is never split


def test_micro_batcher_refuses_work_beyond_its_queue_and_survives_a_failure():
    def score(texts):
        if "boom" in texts:
            raise ValueError("boom")
        return (np.zeros(len(texts)),)

    async def main():
        batcher = MicroBatcher(score, max_wait_s=0.0, max_batch=4, max_queue=3)
        await batcher.start()
        with pytest.raises(Overloaded):
            await batcher.submit(["a"] * 4)
        with pytest.raises(ValueError):
            await batcher.submit(["boom"])
        ok = await batcher.submit(["a", "b"])
        await batcher.stop()
        return ok

    assert asyncio.run(main())[0].tolist() == [0.0, 0.0]


def test_alfia_serve_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_alfia(["serve", tmp_path / "empty", "--port", "0"], capsys)
    assert code == 2 and "not a run directory" in err and "Traceback" not in err
    code, _, err = run_alfia(["serve", tmp_path / "empty", "--max-batch", "0"], capsys)
    assert code == 2 and "Invalid value for '--max-batch': 0 is not in the range x>=1" in err
