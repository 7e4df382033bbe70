"""Text tables to tokenised datasets, length-bucketed batches and dynamic padding (training and inference).

The reference code padded every text to 512 tokens. Here each text is tokenised once, unpadded, and a
batch is padded only to its own longest member; the sampler groups texts of similar length so that
padding stays small while the batch order stays random.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.text.table import TEXT_COLUMN


class _StayRows(Dataset):
    """One payload per stay (the field ``payload`` names), with the stay's identity and, if known, its label."""

    payload: ClassVar[str]

    def __len__(self) -> int:
        return len(getattr(self, self.payload))

    def __getitem__(self, i: int) -> dict:
        item = {self.payload: getattr(self, self.payload)[i], "index": i}
        if self.labels is not None:
            item["label"] = float(self.labels[i])
        return item

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per row (what the length-bucketed sampler groups by)."""
        return np.fromiter(map(self._tokens, getattr(self, self.payload)), dtype=np.int64, count=len(self))


@dataclass
class TokenizedTexts(_StayRows):
    """Unpadded token ids per text, with the row's identity and (if known) its label."""

    payload: ClassVar[str] = "input_ids"
    input_ids: list[list[int]]
    stay_id: np.ndarray
    split: np.ndarray
    labels: np.ndarray | None = None

    @staticmethod
    def _tokens(ids: list[int]) -> int:
        return len(ids)

    def subset(self, indices: Sequence[int]) -> "TokenizedTexts":
        idx = np.asarray(indices, dtype=np.int64)
        return TokenizedTexts([self.input_ids[i] for i in idx], self.stay_id[idx], self.split[idx],
                              None if self.labels is None else self.labels[idx])


def tokenize_texts(texts: Sequence[str], tokenizer, max_length: int, *, stay_id=None, split=None,
                   labels=None, chunk: int = 1024) -> TokenizedTexts:
    """Tokenise without padding, truncating to ``max_length`` tokens (special tokens included)."""
    texts = list(texts)
    ids: list[list[int]] = []
    for start in range(0, len(texts), chunk):
        enc = tokenizer(texts[start:start + chunk], truncation=True, max_length=max_length,
                        padding=False, return_attention_mask=False, return_token_type_ids=False)
        ids.extend(list(map(list, enc["input_ids"])))
    n = len(texts)
    return TokenizedTexts(
        ids,
        np.asarray(stay_id if stay_id is not None else np.arange(n)),
        np.asarray(split if split is not None else np.full(n, ""), dtype=object),
        None if labels is None else np.asarray(labels, dtype=np.int8),
    )


def tokenize_table(df: pd.DataFrame, tokenizer, max_length: int) -> TokenizedTexts:
    """A text table (``text`` + ``stay_id`` + ``split`` + label, if present) tokenised.

    The table was checked where it entered (``alfia.text.table.check_texts`` and the label checks of
    ``alfia.cohorts.validate``); here it is only converted."""
    labels = df[OUTCOME_COLUMN].to_numpy(dtype=np.int8) if OUTCOME_COLUMN in df.columns else None
    stay_id = df[ID_COLUMN].to_numpy() if ID_COLUMN in df.columns else np.arange(len(df))
    split = df[SPLIT_COLUMN].astype(str).to_numpy() if SPLIT_COLUMN in df.columns else None
    return tokenize_texts(df[TEXT_COLUMN].tolist(), tokenizer, max_length, stay_id=stay_id,
                          split=split, labels=labels)


class LengthBucketedBatchSampler(Sampler[list[int]]):
    """Batches of rows with similar token length, every row exactly once per epoch.

    Training order: a seeded permutation, cut into buckets of ``bucket_size`` batches; each bucket is
    sorted by length and cut into batches; the batches are then shuffled. The order depends only on
    (seed, epoch), so a resumed run sees the very batches an uninterrupted one would.
    Without ``shuffle`` (evaluation) rows are simply sorted by length.

    ``rows_per_epoch`` (training only): each epoch takes the next that many rows of a stream of seeded
    permutations, so consecutive epochs cover the data without repeating a row before all were seen.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, bucket_size: int = 50,
                 shuffle: bool = True, seed: int = 42, drop_last: bool = False, rows_per_epoch: int | None = None):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.bucket_size = int(bucket_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.rows_per_epoch = None if rows_per_epoch is None or rows_per_epoch >= len(self.lengths) else int(rows_per_epoch)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            out = [order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            perm = rng.permutation(n) if self.rows_per_epoch is None else self._epoch_rows()
            n = len(perm)
            span = self.batch_size * self.bucket_size
            out = []
            for start in range(0, n, span):
                bucket = perm[start:start + span]
                bucket = bucket[np.argsort(self.lengths[bucket], kind="stable")]
                out += [bucket[i:i + self.batch_size].tolist()
                        for i in range(0, len(bucket), self.batch_size)]
            out = [out[i] for i in rng.permutation(len(out))]
        if self.drop_last:
            out = [b for b in out if len(b) == self.batch_size]
        return out

    def _epoch_rows(self) -> np.ndarray:
        """This epoch's slice of the stream of permutations (one seeded permutation per pass over the data)."""
        n, size = len(self.lengths), self.rows_per_epoch
        start = self.epoch * size
        rows = []
        while size > 0:
            cycle, offset = divmod(start, n)
            perm = np.random.default_rng([self.seed, 1_000_003, cycle]).permutation(n)
            take = perm[offset:offset + size]
            rows.append(take)
            size -= len(take)
            start += len(take)
        return np.concatenate(rows)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        if self.drop_last:
            return (self.rows_per_epoch or len(self.lengths)) // self.batch_size
        if not self.shuffle:
            return math.ceil(len(self.lengths) / self.batch_size)
        return len(self.batches())


class PadToLongest:
    """Collate: pad a batch to its own longest text (never to a fixed length)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = int(pad_token_id)

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, it in enumerate(items):
            ids[row, :len(it["input_ids"])] = torch.as_tensor(it["input_ids"], dtype=torch.long)
            mask[row, :len(it["input_ids"])] = 1
        batch = {"input_ids": ids, "attention_mask": mask,
                 "index": torch.as_tensor([it["index"] for it in items], dtype=torch.long)}
        if "label" in items[0]:
            batch["labels"] = torch.as_tensor([it["label"] for it in items], dtype=torch.float32)
        return batch


@dataclass
class FrozenStates(_StayRows):
    """Hidden states H^(j), j in ``layers``, of a frozen encoder: one ``(T_i, len(layers), d)`` fp16 tensor per
    text (unpadded; views into one buffer, in memory or memory-mapped).

    Computed once (``alfia.runtime.forward.compute_frozen_states``). The top-N_f states let the pooler and head
    train for many epochs at a fraction of an encoder pass each (``train_layers=0``, and the head warm start);
    a frozen bottom's states (``AlfiaModel.bottom_indices``) let each step run only the trained top layers.
    """

    payload: ClassVar[str] = "states"
    states: list[torch.Tensor]
    stay_id: np.ndarray
    split: np.ndarray
    labels: np.ndarray | None = None
    layers: tuple[int, ...] = ()  # the j of each H^(j) held, in order (eq. 1's numbering; 0 = embeddings)

    def subset(self, indices: Sequence[int]) -> "FrozenStates":
        idx = np.asarray(indices, dtype=np.int64)
        return FrozenStates([self.states[i] for i in idx], self.stay_id[idx], self.split[idx],
                            None if self.labels is None else self.labels[idx], self.layers)

    @staticmethod
    def _tokens(states: torch.Tensor) -> int:
        return int(states.shape[0])


class PadStates:
    """Collate cached states: pad to the batch's longest text -> ``states (B, T, N, d)`` float32 + mask, and
    ``layers`` (which H^(j) they are)."""

    def __init__(self, layers: tuple[int, ...] = ()):
        self.layers = tuple(layers)

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(it["states"].shape[0] for it in items)
        _, n_layers, d = items[0]["states"].shape
        states = torch.zeros((len(items), longest, n_layers, d), dtype=torch.float32)
        mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, it in enumerate(items):
            t = it["states"].shape[0]
            states[row, :t] = it["states"].float()
            mask[row, :t] = 1
        batch = {"states": states, "attention_mask": mask, "layers": self.layers,
                 "index": torch.as_tensor([it["index"] for it in items], dtype=torch.long)}
        if "label" in items[0]:
            batch["labels"] = torch.as_tensor([it["label"] for it in items], dtype=torch.float32)
        return batch


def make_loader(data: TokenizedTexts | FrozenStates, batch_size: int, pad_token_id: int, *, shuffle: bool,
                seed: int = 42, bucket_size: int = 50, num_workers: int = 0, rows_per_epoch: int | None = None):
    sampler = LengthBucketedBatchSampler(data.lengths, batch_size, bucket_size=bucket_size,
                                         shuffle=shuffle, seed=seed, rows_per_epoch=rows_per_epoch)
    collate = PadStates(data.layers) if isinstance(data, FrozenStates) else PadToLongest(pad_token_id)
    # A private generator: creating an iterator would otherwise draw from torch's global RNG, which
    # dropout uses, and a run resumed mid-epoch would then see different dropout masks.
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=num_workers, generator=torch.Generator().manual_seed(seed))
    return loader, sampler


def pad_token_id_of(tokenizer) -> int:
    pad = getattr(tokenizer, "pad_token_id", None)
    return int(pad) if pad is not None else 0
