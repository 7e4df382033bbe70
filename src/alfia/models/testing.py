"""A tiny, deterministic, offline BERT for tests across the project (training, inference, baselines).

``tiny_backbone(tmp_path)`` writes a randomly initialised BertModel (4 layers, hidden 32, 4 heads) and a
small WordPiece tokenizer into a folder and returns that folder, so ``AlfiaConfig(backbone=str(path))``
exercises the same local-folder loading that users' own models go through. Building it takes well under
a second; no model hub is involved.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import torch

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words common in ALFIA's clinical descriptions; anything else falls back to characters.
_WORDS = """the a an of and with was is in on at for to from by no yes not patient year years old male female
admitted admission icu unit emergency elective urgent surgical medical heart rate blood pressure systolic
diastolic mean arterial respiratory temperature oxygen saturation spo2 glucose lactate creatinine sodium
potassium bicarbonate hemoglobin platelets white cell count bilirubin urine output score sofa gcs apache
saps age weight height bmi kg cm mmhg bpm mg dl mmol l hours first day stay smoker alcohol history
hypertension diabetes sepsis ventilation ventilated intubated died survived minimum maximum""".split()


def tiny_vocab() -> dict[str, int]:
    tokens = list(_SPECIAL)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens += chars + ["##" + c for c in string.ascii_lowercase + string.digits]
    tokens += [w for w in dict.fromkeys(_WORDS) if w not in tokens]
    return {token: i for i, token in enumerate(tokens)}


def tiny_tokenizer(model_max_length: int = 512):
    from transformers import BertTokenizer

    return BertTokenizer(vocab=tiny_vocab(), do_lower_case=True, model_max_length=model_max_length)


def tiny_bert(layers: int = 4, hidden: int = 32, heads: int = 4, intermediate: int = 64, seed: int = 0,
              max_positions: int = 512):
    """(model, tokenizer): a random BertModel with deterministic weights, and its tokenizer."""
    from transformers import BertConfig, BertModel

    tokenizer = tiny_tokenizer(model_max_length=max_positions)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    return model.eval(), tokenizer


def tiny_backbone(directory: str | os.PathLike, layers: int = 4, *, hidden: int = 32, heads: int = 4,
                  intermediate: int = 64, seed: int = 0) -> Path:
    """Write a tiny BERT + tokenizer to ``directory/tiny-bert-<layers>l`` and return that folder."""
    folder = Path(directory) / f"tiny-bert-{layers}l-{hidden}h-s{seed}"
    if not (folder / "config.json").is_file():
        model, tokenizer = tiny_bert(layers=layers, hidden=hidden, heads=heads, intermediate=intermediate,
                                     seed=seed)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder
