"""Tokenised datasets, the length-bucketed sampler and dynamic padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alfia.runtime import LengthBucketedBatchSampler, PadToLongest, TokenizedTexts, make_loader


def _dataset(lengths) -> TokenizedTexts:
    ids = [list(range(5, 5 + n)) for n in lengths]
    return TokenizedTexts(ids, np.arange(len(ids)), np.array(["train"] * len(ids), dtype=object),
                          np.zeros(len(ids), dtype=np.int8))


@pytest.mark.parametrize("shuffle", [True, False])
def test_sampler_covers_every_row_exactly_once_per_epoch(shuffle):
    lengths = np.random.default_rng(0).integers(3, 200, size=203)
    sampler = LengthBucketedBatchSampler(lengths, batch_size=16, bucket_size=4, shuffle=shuffle, seed=42)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(len(lengths)))
        assert all(1 <= len(b) <= 16 for b in batches)


def test_sampler_order_depends_only_on_seed_and_epoch():
    lengths = np.arange(100) % 37 + 1
    a = LengthBucketedBatchSampler(lengths, 8, seed=42)
    b = LengthBucketedBatchSampler(lengths, 8, seed=42)
    a.set_epoch(3), b.set_epoch(3)
    assert a.batches() == b.batches()
    b.set_epoch(4)
    assert a.batches() != b.batches()
    assert LengthBucketedBatchSampler(lengths, 8, seed=7).batches() != LengthBucketedBatchSampler(lengths, 8).batches()


def test_buckets_group_similar_lengths():
    # Within a bucket, batches hold neighbours in length, so padding is far below padding to the longest text.
    lengths = np.random.default_rng(1).integers(10, 500, size=640)
    sampler = LengthBucketedBatchSampler(lengths, 16, bucket_size=40, seed=42)
    padded = sum(len(b) * lengths[b].max() for b in sampler)
    assert padded < 0.6 * len(lengths) * lengths.max()
    assert padded < 1.1 * lengths.sum()


def test_batches_are_padded_to_their_own_longest_text():
    lengths = [3, 50, 7, 9, 120, 4, 33, 8, 61, 5]
    data = _dataset(lengths)
    loader, _ = make_loader(data, batch_size=3, pad_token_id=0, shuffle=True, seed=42, bucket_size=2)
    seen = []
    for batch in loader:
        rows = batch["index"].numpy()
        longest = max(lengths[i] for i in rows)
        assert batch["input_ids"].shape == (len(rows), longest)
        assert batch["attention_mask"].sum(dim=1).tolist() == [lengths[i] for i in rows]
        # Everything past a text's own length is padding, masked out.
        for row, i in enumerate(rows):
            assert (batch["input_ids"][row, lengths[i]:] == 0).all()
            assert batch["input_ids"][row, :lengths[i]].tolist() == data.input_ids[i]
        seen += rows.tolist()
    assert sorted(seen) == list(range(len(lengths)))
    assert max(b.shape[1] for b in [x["input_ids"] for x in loader]) == 120
    assert min(b.shape[1] for b in [x["input_ids"] for x in loader]) < 120


def test_collate_carries_labels_as_floats():
    batch = PadToLongest(0)([{"input_ids": [1, 2], "index": 0, "label": 1.0},
                             {"input_ids": [1], "index": 1, "label": 0.0}])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [1.0, 0.0]


def test_rows_per_epoch_covers_the_data_once_before_any_row_repeats():
    lengths = np.random.default_rng(0).integers(5, 60, size=100)
    sampler = LengthBucketedBatchSampler(lengths, 8, bucket_size=2, seed=3, rows_per_epoch=40)
    seen = []
    for epoch in range(5):  # 200 rows: two full passes over the 100
        sampler.set_epoch(epoch)
        rows = [i for batch in sampler for i in batch]
        assert len(rows) == 40 and len(set(rows)) == 40
        seen += rows
    assert len(set(seen[:80])) == 80  # epochs 0 and 1 repeat no row
    assert np.bincount(seen, minlength=100).tolist() == [2] * 100  # 5 epochs of 40 = every row exactly twice
    sampler.set_epoch(1)  # the same (seed, epoch) gives the same rows: a resumed run sees the same batches
    again = [i for batch in sampler for i in batch]
    assert again == seen[40:80]
    assert len(LengthBucketedBatchSampler(lengths, 8, rows_per_epoch=500)) == len(LengthBucketedBatchSampler(lengths, 8))
