"""The runtime shared by training and inference: device and threads, tokenised batches with dynamic
padding, and batched forward passes. It sits between ``models`` and ``training``/``inference`` in the
data flow, so inference never imports training.
"""

from alfia.runtime.batches import (
    FrozenStates, LengthBucketedBatchSampler, PadStates, PadToLongest, TokenizedTexts, make_loader, pad_token_id_of,
    tokenize_table, tokenize_texts,
)
from alfia.runtime.device import (
    autocast_context, bf16_is_fast, process_state_kept, resolve_device, seed_everything, set_threads,
)
from alfia.runtime.forward import compute_frozen_states, forward_batch, iterate_outputs, predict_logits

__all__ = ["FrozenStates", "LengthBucketedBatchSampler", "PadStates", "PadToLongest", "TokenizedTexts",
           "autocast_context", "bf16_is_fast", "compute_frozen_states", "forward_batch",
           "iterate_outputs", "make_loader", "pad_token_id_of", "predict_logits", "process_state_kept", "resolve_device",
           "seed_everything", "set_threads", "tokenize_table", "tokenize_texts"]
