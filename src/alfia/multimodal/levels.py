"""Modality-aware level stacking, part 1: each encoder's levels, pooled per stay, cached once.

A *level* is the representation one layer of a modality's encoder gives a stay, pooled to one vector:

- text (a trained ALFIA run): the mask-aware mean over the stay's tokens of each encoder layer's hidden states,
  H^(1) .. H^(L) (the form of ALF's eq. 2), and the run's own pooled embedding H_ALF_out (eq. 14) on top;
- series (a trained ``alfia series`` run): per recurrent layer its final states (forward at the last hour,
  backward at the first), per Transformer layer its mean over the hours (the input projection first), and the
  head's hidden layer on top;
- tabular (the MLP of :mod:`alfia.multimodal.tabular`): the preprocessed row, then each hidden layer.

Levels run lower to upper; the last one is the encoder's own output, the "global" view its head predicts
from. Beside its levels every modality keeps the encoder's own logit per stay (the modality alone).

The cache is one safetensors file per modality (``levels/<modality>.safetensors``): ``stay_id`` (int64, the
order of every array), ``own_logit`` (float32) and ``level_000`` ... (float16, stays x width), with the level
names and where they came from in the file's metadata. ``levels/stays.parquet`` holds the stays' split and
label, so the fusion trains from the cache alone: an epoch over cached vectors costs seconds on a CPU.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.atomic import atomic_path
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError

CACHE_FORMAT = "alfia-lemof-levels/1"
MODALITIES = ("text", "series", "tabular")
STAYS_FILE = "stays.parquet"
_FLOAT16_MAX = 65000.0  # levels beyond fp16's range would turn into inf in the cache


@dataclass
class ModalityLevels:
    """One modality's levels for a set of stays, in ``stay_id`` order."""

    modality: str
    stay_id: np.ndarray  # (N,) int64
    names: list[str]  # one per level, lower to upper
    levels: list[np.ndarray]  # (N, d_l) float32 each
    own_logit: np.ndarray  # (N,) the encoder's own logit
    source: dict = field(default_factory=dict)  # where the levels came from (run, data, SHA-256)

    def __post_init__(self) -> None:
        self.stay_id = np.asarray(self.stay_id, dtype=np.int64)
        self.own_logit = np.asarray(self.own_logit, dtype=np.float32).reshape(-1)
        self.levels = [np.asarray(x, dtype=np.float32) for x in self.levels]
        n = len(self.stay_id)
        if len(self.names) != len(self.levels) or not self.levels:
            raise AlfiaError(f"{self.modality}: {len(self.levels)} level arrays for {len(self.names)} level names")
        for name, x in zip(self.names, self.levels):
            if x.ndim != 2 or x.shape[0] != n:
                raise AlfiaError(f"{self.modality}: level {name!r} has shape {x.shape}; expected ({n}, width)")
            if not np.isfinite(x).all():
                raise AlfiaError(f"{self.modality}: level {name!r} holds NaN or infinite values")
        if self.own_logit.shape != (n,):
            raise AlfiaError(f"{self.modality}: {self.own_logit.shape[0]} own logits for {n} stays")

    @property
    def widths(self) -> list[int]:
        return [int(x.shape[1]) for x in self.levels]

    def take(self, stay_id, *, source: str = "") -> "ModalityLevels":
        """The levels of ``stay_id``, in that order; a stay this modality lacks is an AlfiaError naming it."""
        stay_id = np.asarray(stay_id, dtype=np.int64)
        position = pd.Index(self.stay_id).get_indexer(stay_id)
        if (position < 0).any():
            missing = stay_id[position < 0]
            raise AlfiaError(f"{source or self.modality}: no {self.modality} levels for stay_id {missing[0]}"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        return ModalityLevels(self.modality, stay_id, list(self.names), [x[position] for x in self.levels],
                              self.own_logit[position], dict(self.source))

    def as_cached(self) -> "ModalityLevels":
        """These levels rounded as the cache stores them (float16), so that fresh levels meet the fusion as the
        cached ones it was trained and written with did."""
        rounded = [np.clip(x, -_FLOAT16_MAX, _FLOAT16_MAX).astype(np.float16).astype(np.float32) for x in self.levels]
        return ModalityLevels(self.modality, self.stay_id, list(self.names), rounded, self.own_logit, dict(self.source))

    def last_only(self) -> "ModalityLevels":
        """Only the top level (single-level and early fusion)."""
        return ModalityLevels(self.modality, self.stay_id, self.names[-1:], self.levels[-1:], self.own_logit,
                              dict(self.source))

    # ---------------------------------------------------------------- the cache file
    def save(self, path: str | os.PathLike) -> Path:
        from safetensors.numpy import save_file

        tensors = {"stay_id": self.stay_id, "own_logit": self.own_logit}
        for i, x in enumerate(self.levels):
            tensors[f"level_{i:03d}"] = np.clip(x, -_FLOAT16_MAX, _FLOAT16_MAX).astype(np.float16)
        metadata = {"format": CACHE_FORMAT, "modality": self.modality, "names": json.dumps(self.names),
                    "source": json.dumps(self.source, default=str)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModalityLevels":
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise AlfiaError(f"{path}: no level cache (train the run again, or rerun `alfia lemof train`)")
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                if meta.get("format") != CACHE_FORMAT:
                    raise AlfiaError(f"{path}: not a LeMoF level cache (format {meta.get('format')!r})")
                names = json.loads(meta["names"])
                levels = [f.get_tensor(f"level_{i:03d}").astype(np.float32) for i in range(len(names))]
                return cls(meta["modality"], f.get_tensor("stay_id"), names, levels, f.get_tensor("own_logit"),
                           json.loads(meta.get("source", "{}")))
        except AlfiaError:
            raise
        except Exception as e:  # a torn or foreign file: say which
            raise AlfiaError(f"{path}: not a readable level cache ({e})") from None


@dataclass
class Stays:
    """The stays the fusion sees, in the cohort's order: id, split, label (-1 where unknown)."""

    stay_id: np.ndarray
    split: np.ndarray
    label: np.ndarray

    def rows_of(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def save(self, folder: str | os.PathLike) -> Path:
        from alfia.atomic import write_atomic

        frame = pd.DataFrame({ID_COLUMN: self.stay_id, SPLIT_COLUMN: self.split, OUTCOME_COLUMN: self.label})
        return write_atomic(Path(folder) / STAYS_FILE, lambda p: frame.to_parquet(p, index=False))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Stays":
        path = Path(folder) / STAYS_FILE
        if not path.is_file():
            raise AlfiaError(f"{path}: missing (the level cache lists its stays there)")
        frame = pd.read_parquet(path)
        return cls(frame[ID_COLUMN].to_numpy(np.int64), frame[SPLIT_COLUMN].astype(str).to_numpy(object),
                   frame[OUTCOME_COLUMN].to_numpy(np.int64))


def save_cache(folder: str | os.PathLike, stays: Stays, levels: dict[str, ModalityLevels]) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, lv in levels.items():
        lv.save(folder / f"{name}.safetensors")
    stays.save(folder)
    return folder


def load_cache(folder: str | os.PathLike, modalities=MODALITIES) -> tuple[Stays, dict[str, ModalityLevels]]:
    """The cached stays and each modality's levels, aligned to the stays' order."""
    folder = Path(folder)
    stays = Stays.load(folder)
    levels = {m: ModalityLevels.load(folder / f"{m}.safetensors").take(stays.stay_id, source=str(folder))
              for m in modalities}
    return stays, levels


# --- matching stays across modalities ----------------------------------------------------------------------

def match_stays(reference: np.ndarray, reference_source: str, others: dict[str, tuple[np.ndarray, str]]) -> None:
    """Every modality holds exactly the reference's stays (by ``stay_id``): a stay one side lacks is an
    AlfiaError naming the stay, the modality and the file. ``others``: modality -> (stay ids, file)."""
    ref = pd.Index(np.asarray(reference))
    if ref.has_duplicates:
        raise AlfiaError(f"{reference_source}: stay_id {ref[ref.duplicated()][0]} appears more than once")
    for modality, (ids, source) in others.items():
        ids = pd.Index(np.asarray(ids))
        if ids.has_duplicates:
            raise AlfiaError(f"{source}: stay_id {ids[ids.duplicated()][0]} appears more than once in the "
                             f"{modality} input")
        lacking = ref.difference(ids, sort=False)
        if len(lacking):
            raise AlfiaError(f"{source}: stay_id {lacking[0]} of {reference_source} is missing from the {modality} "
                             f"input" + (f" ({len(lacking)} stays in all)" if len(lacking) > 1 else "")
                             + "; every modality must hold the same stays")
        extra = ids.difference(ref, sort=False)
        if len(extra):
            raise AlfiaError(f"{source}: stay_id {extra[0]} of the {modality} input is not in {reference_source}"
                             + (f" ({len(extra)} stays in all)" if len(extra) > 1 else "")
                             + "; every modality must hold the same stays")


def check_same_values(reference: pd.Series, other: pd.Series, what: str, reference_source: str,
                      source: str) -> None:
    """``other`` (indexed by stay_id) agrees with ``reference`` on every stay (labels, splits)."""
    other = other.reindex(reference.index)
    known = other.notna() & reference.notna()
    differ = known & (other.astype(str) != reference.astype(str))
    if differ.any():
        stay = differ.index[differ.to_numpy()][0]
        raise AlfiaError(f"{source}: the {what} of stay_id {stay} is {other[stay]!r}, but {reference_source} says "
                         f"{reference[stay]!r} ({int(differ.sum())} stays differ); build every input from the same "
                         f"cohort, split and --task")
