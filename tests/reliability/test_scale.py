"""Memory guard: predict and embed tokenise and score the input a chunk at a time (the 10k / 200k-row
peak-RSS figures are in BENCHMARKS.md, from benchmarks/reliability_scale.py)."""

from __future__ import annotations

import importlib

import numpy as np


def test_predict_and_embed_stream_in_chunks_with_the_same_results(assets, monkeypatch):
    # importlib: the attribute alfia.inference.predict is the function, which shadows the module
    inference = importlib.import_module("alfia.inference.predict")

    run = inference.load_run(assets.run, num_threads=1)
    inputs = inference.read_inference_input(assets.text_path, run)
    whole, _ = inference.predict(run, inputs, batch_size=8)
    whole_emb, _ = inference.embed(run, inputs, batch_size=8)

    chunks: list[int] = []
    tokenize = inference.tokenize_texts

    def counting(texts, *args, **kwargs):
        chunks.append(len(texts))
        return tokenize(texts, *args, **kwargs)

    monkeypatch.setattr(inference, "tokenize_texts", counting)
    monkeypatch.setattr(inference, "STREAM_ROWS", 7)
    streamed, perf = inference.predict(run, inputs, batch_size=8)
    assert max(chunks) == 7 and sum(chunks) == len(inputs) == 60  # never more than one chunk of tokens
    assert perf.n_samples == 60 and perf.extra["mean_tokens"] > 2
    np.testing.assert_array_equal(streamed["stay_id"], whole["stay_id"])
    np.testing.assert_allclose(streamed["prob"], whole["prob"], rtol=1e-5, atol=1e-7)
    streamed_emb, _ = inference.embed(run, inputs, batch_size=8)
    cols = [c for c in whole_emb.columns if c.startswith(("alf_", "layer_weight_"))]
    np.testing.assert_allclose(streamed_emb[cols].to_numpy(), whole_emb[cols].to_numpy(), rtol=1e-4, atol=1e-6)
