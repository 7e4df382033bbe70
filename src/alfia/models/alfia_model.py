"""The assembled ALFIA model (the paper's Algorithm 1): encoder (+ LoRA) -> pooler (ALF) -> ACH.

``build_model(config)`` makes a fresh model for training. ``AlfiaModel.from_pretrained(run_dir)``
restores a saved one. The run directory holds (see ``alfia.runs.RunLayout``):

- ``config.json``: its ``"model"`` section is the ``AlfiaConfig`` (the run's one copy of it; a training run
  adds its ``train`` and ``data`` sections to the same file);
- ``backbone.json``: the backbone reference;
- ``fusion_head.safetensors``: pooler (ALF) and ACH weights;
- ``adapter/``: the LoRA adapter in peft's format (LoRA runs that train encoder layers);
- ``encoder.safetensors``: the trained encoder layers' weights (full fine-tuning only: every weight with
  ``train_layers="all"``, the top K layers' with ``train_layers=K``).

What of the encoder trains is ``config.train_layers`` (``alfia.models.layers``): with K top layers over a
frozen bottom, ``encode_states`` computes the bottom's output once and ``forward_from_states`` runs only the
top K layers over it.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alfia.atomic import atomic_path, read_json_object, write_json_atomic
from alfia.errors import AlfiaError
from alfia.models.attentional_classifier_head import AttentionalClassifierHead
from alfia.models.backbone import (
    Backbone,
    check_same_backbone,
    describe_backbone,
    hidden_size,
    load_backbone,
    load_backbone_from_reference,
    num_layers,
    set_attention_dropout,
)
from alfia.models.config import AlfiaConfig
from alfia.models.families import family_of
from alfia.models.layers import (
    bidirectional_mask, cached_state_indices, trained_parameter_names, layer_stack, lora_layer_indices, prune_encoder,
    run_layers, trained_layer_count,
)
from alfia.models.lora import apply_lora, load_lora_adapter, save_lora_adapter
from alfia.models.poolers import build_pooler, pooler_layer_count
from alfia.runs import RunLayout

_FUSION_HEAD_PREFIXES = ("pooler.", "head.", "state_mean", "state_scale")


@dataclass
class AlfiaOutput:
    logits: torch.Tensor  # (B,): one logit per sample; probability = sigmoid(logit)
    embedding: torch.Tensor  # (B, d): the pooled vector fed to the head (H_ALF_out for the ALF pooler)
    layer_weights: torch.Tensor | None  # (B, N_f) for alf and static_mean; None for cls/mean/max

    @property
    def probabilities(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)  # Algorithm 1, line 21


class AlfiaModel(nn.Module):
    """Encoder (optionally LoRA-wrapped) -> pooler -> Attentional Classifier Head.

    Build it with ``build_model`` or ``AlfiaModel.from_pretrained``; the constructor takes an encoder
    that is already prepared for ``config.finetune``.
    """

    def __init__(self, config: AlfiaConfig, encoder: nn.Module, tokenizer: Any,
                 backbone_reference: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.backbone_reference = dict(backbone_reference)
        self.encoder = encoder
        base_config = self._base_encoder().config
        self.hidden_size = hidden_size(base_config)
        self.num_backbone_layers = num_layers(base_config)
        self.n_pooled_layers = pooler_layer_count(config)
        depth = self.num_backbone_layers
        self.trained_layers = trained_layer_count(config.train_layers, depth)  # K of train_layers
        self._stack = layer_stack(self._base_encoder())
        # H^(j) indices (eq. 1): what the pooler reads, and what a frozen-bottom cache holds (None: no cache,
        # because nothing or everything trains, or the family's layers cannot be run one by one).
        self.pooled_indices = tuple(range(depth - self.n_pooled_layers + 1, depth + 1))
        self.bottom_indices = (cached_state_indices(depth, self.trained_layers, self.n_pooled_layers)
                               if 0 < self.trained_layers < depth and self._stack is not None else None)
        self.pooler = build_pooler(config, self.hidden_size)
        # Per-layer, per-dimension standardisation of the pooled layers' token states (fitted once on the
        # training texts, not learned). MiniLM's top-layer states differ between patients by ~5% of their
        # magnitude; after the LayerNorms of ALF/ACH that small part was lost as soon as Adam grew the
        # biases, and every patient got the same logit (the collapse; BENCHMARKS.md). Identity until fitted.
        self.register_buffer("state_mean", torch.zeros(self.n_pooled_layers, self.hidden_size))
        self.register_buffer("state_scale", torch.ones(self.n_pooled_layers, self.hidden_size))
        self.head = AttentionalClassifierHead(self.hidden_size, n_heads=config.classifier_heads,
                                              ffn_mult=config.head_ffn_mult, dropout=config.dropout)
        self.max_length = _effective_max_length(config.max_length, tokenizer, base_config)
        if config.attention_dropout is not None:
            set_attention_dropout(self._base_encoder(), config.attention_dropout)
        self._takes_token_type_ids = "token_type_ids" in inspect.signature(self._base_encoder().forward).parameters
        if self.trained_layers == 0:
            self._encoder_trained: frozenset[str] = frozenset()
        elif config.finetune == "lora":
            # peft leaves exactly the adapter's parameters (LoRA matrices, and biases if lora.bias asks) trainable.
            self._encoder_trained = frozenset(name for name, p in encoder.named_parameters() if p.requires_grad)
            if not self._encoder_trained:
                raise AlfiaError("finetune='lora' but the encoder has no trainable LoRA parameters")
        else:
            self._encoder_trained = frozenset(trained_parameter_names(encoder, self.trained_layers))
        self.set_trainable(True)

    # ---------------------------------------------------------------- parameters
    def _base_encoder(self) -> nn.Module:
        get_base = getattr(self.encoder, "get_base_model", None)
        return get_base() if callable(get_base) else self.encoder

    def set_trainable(self, trainable: bool = True) -> None:
        """Set ``requires_grad`` as ``train_layers`` and ``finetune`` say (or freeze everything with ``False``)."""
        self.pooler.requires_grad_(trainable)
        self.head.requires_grad_(trainable)
        for name, param in self.encoder.named_parameters():
            param.requires_grad_(trainable and name in self._encoder_trained)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters an optimizer should update: ALF + ACH and the trained layers' LoRA or weights."""
        return [p for p in self.parameters() if p.requires_grad]

    # ---------------------------------------------------------------- forward
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise with dynamic padding (to the longest text) and truncation to ``max_length``."""
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise AlfiaError(f"text #{i} of the batch is empty or not a string: {text!r}")
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
        keys = ("input_ids", "attention_mask") + (("token_type_ids",) if self._takes_token_type_ids else ())
        return {k: encoded[k] for k in keys if k in encoded}

    def top_hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """H^(L-N_f+1) .. H^(L), each (B, T, d): what the pooler reads (eq. 1, top N_f layers)."""
        inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self._takes_token_type_ids:
            inputs["token_type_ids"] = token_type_ids
        # A frozen encoder needs no autograd graph: saves memory and time when only ALF + ACH train.
        with torch.no_grad() if self._encoder_frozen() else contextlib.nullcontext():
            out = self.encoder(**inputs, output_hidden_states=True, return_dict=True)
        hidden_states = out.hidden_states  # eq. (1): H^(0) .. H^(L)
        if hidden_states is None:
            raise AlfiaError(f"backbone {self.backbone_reference.get('name')} returned no hidden states")
        return tuple(hidden_states[-self.n_pooled_layers:])

    def _encoder_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.encoder.parameters())

    def encode_states(self, indices: Sequence[int], input_ids: torch.Tensor,
                      attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """H^(j) for each j in ``indices`` (eq. 1), running the encoder only as high as the largest j.

        What a cache of the frozen bottom is made of; needs a family whose layers run one by one."""
        if self._stack is None:
            raise AlfiaError(f"the {self._base_encoder().config.model_type} encoder's layers cannot be run one by one")
        base = self._base_encoder()
        with torch.no_grad() if self._encoder_frozen() else contextlib.nullcontext():
            hidden = base.embeddings(input_ids=input_ids)  # H^(0)
            mask = bidirectional_mask(base, hidden, attention_mask)
            states = [hidden, *run_layers(self._stack, 0, max(indices), hidden, mask)]
        return tuple(states[j] for j in indices)

    def pooled_states_from(self, states: torch.Tensor, held: Sequence[int],
                           attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The pooled layers' states from cached ``states (B, T, len(held), d)`` holding H^(j), j in ``held``.

        With the top-N_f states cached this is a lookup; with a frozen-bottom cache the layers above its last
        state, H^(L-K), run here (with autograd when they train)."""
        held = tuple(held)
        if states.shape[2] != len(held):
            raise AlfiaError(f"cached states hold {states.shape[2]} layers; expected {len(held)} (H^{held})")
        by_index = dict(zip(held, states.unbind(2)))
        entry = held[-1]
        if entry < self.num_backbone_layers:
            if self._stack is None:
                raise AlfiaError("cached bottom states need an encoder whose layers run one by one")
            base = self._base_encoder()
            hidden = by_index[entry]
            mask = bidirectional_mask(base, hidden, attention_mask)
            for offset, out in enumerate(run_layers(self._stack, entry, self.num_backbone_layers, hidden, mask)):
                by_index[entry + 1 + offset] = out
        missing = [j for j in self.pooled_indices if j not in by_index]
        if missing:
            raise AlfiaError(f"cached states H^{held} do not give the pooled layers H^{tuple(missing)}")
        return tuple(by_index[j] for j in self.pooled_indices)

    def forward_from_states(self, states: torch.Tensor, attention_mask: torch.Tensor,
                            held: Sequence[int] | None = None) -> AlfiaOutput:
        """Pooler + head over cached states ``(B, T, n, d)`` (``FrozenStates``): the top-N_f layers' states,
        or (``held`` = ``bottom_indices``) a frozen bottom's, above which the trained top layers run."""
        held = self.pooled_indices if held is None else tuple(held)
        return self._pool_and_classify(self.pooled_states_from(states, held, attention_mask), attention_mask)

    @torch.no_grad()
    def fit_state_standardisation(self, states: Sequence[torch.Tensor]) -> None:
        """Set ``state_mean``/``state_scale`` from unpadded ``(T_i, N_f, d)`` top-layer states of training texts."""
        self.set_state_standardisation(*self.state_sums(states))

    def state_sums(self, states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(sum, sum of squares, tokens) of the states per layer and dimension, float64: what the standardisation
        is made of; sums of disjoint texts add up (a federated run adds its sites')."""
        total = torch.zeros(self.n_pooled_layers, self.hidden_size, dtype=torch.float64)
        squares = torch.zeros_like(total)
        count = 0
        for s in states:
            s = s.to(torch.float64)
            total += s.sum(dim=0)
            squares += (s * s).sum(dim=0)
            count += s.shape[0]
        return total, squares, count

    @torch.no_grad()
    def set_state_standardisation(self, total: torch.Tensor, squares: torch.Tensor, count: int) -> None:
        """``state_mean``/``state_scale`` from :meth:`state_sums`."""
        total, squares = torch.as_tensor(total, dtype=torch.float64), torch.as_tensor(squares, dtype=torch.float64)
        if count < 2:
            raise AlfiaError("standardising the encoder states needs at least two tokens of training text")
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0.0)
        # A floor on the scale: a dimension that never varies is left as it is, not blown up.
        self.state_mean.copy_(mean.float())
        self.state_scale.copy_(var.sqrt().clamp_min(1e-2).float())

    def _pool_and_classify(self, top_layers, attention_mask: torch.Tensor) -> AlfiaOutput:
        if self.config.standardise_states:
            top_layers = [(h - self.state_mean[j]) / self.state_scale[j] for j, h in enumerate(top_layers)]
        embedding, layer_weights = self.pooler(top_layers, attention_mask)
        logits = self.head(embedding)
        return AlfiaOutput(logits=logits, embedding=embedding, layer_weights=layer_weights)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> AlfiaOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self._pool_and_classify(self.top_hidden_states(input_ids, attention_mask, token_type_ids),
                                       attention_mask)

    # ---------------------------------------------------------------- persistence
    def fusion_head_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous() for k, v in self.state_dict().items()
                if k.startswith(_FUSION_HEAD_PREFIXES)}

    def save_pretrained(self, run_dir: str | os.PathLike) -> RunLayout:
        """Write the model's part of a run directory; every file atomically."""
        from safetensors.torch import save_file, save_model

        layout = RunLayout.of(run_dir)
        layout.root.mkdir(parents=True, exist_ok=True)
        if self.trained_layers and self.config.finetune == "lora":
            save_lora_adapter(self.encoder, layout.adapter)
        elif self.trained_layers == self.num_backbone_layers:
            with atomic_path(layout.encoder_weights) as tmp:
                save_model(self.encoder, str(tmp), metadata={"format": "pt"})
        elif self.trained_layers:  # the top K layers' weights; the frozen rest is the pre-trained backbone's
            weights = {n: p.detach().contiguous() for n, p in self.encoder.named_parameters() if n in self._encoder_trained}
            with atomic_path(layout.encoder_weights) as tmp:
                save_file(weights, str(tmp), metadata={"format": "pt", "train_layers": str(self.trained_layers)})
        metadata = {"format": "pt", "pooler": self.config.pooler, "hidden_size": str(self.hidden_size)}
        with atomic_path(layout.fusion_head) as tmp:
            save_file(self.fusion_head_state(), str(tmp), metadata=metadata)
        write_json_atomic(layout.backbone, self.backbone_reference)
        # The model's config goes into the run's own config.json (created if absent): one copy per run.
        doc = read_json_object(layout.config) if layout.config.exists() else {}
        write_json_atomic(layout.config, {"model_type": "alfia", **doc, "model": self.config.to_dict()})
        return layout

    @classmethod
    def from_pretrained(cls, run_dir: str | os.PathLike, *, backbone: nn.Module | None = None,
                        tokenizer: Any = None, trainable: bool = False) -> "AlfiaModel":
        """Restore a model saved with ``save_pretrained``, in eval mode.

        ``backbone``/``tokenizer`` replace the encoder named in ``backbone.json`` (it must be the same
        architecture; its pre-trained weights are what the adapter was trained on). ``trainable=True``
        leaves the parameters trainable as ``config.finetune`` says, e.g. to continue training.
        """
        layout = RunLayout.of(run_dir)
        if not layout.root.is_dir():
            raise AlfiaError(f"{layout.root}: no such run directory")
        doc = read_json_object(layout.config, missing="no config.json: not a saved ALFIA model")
        if not isinstance(doc.get("model"), dict):
            raise AlfiaError(f"{layout.config}: no 'model' section; not a saved ALFIA model")
        config = AlfiaConfig.from_dict(doc["model"], source=f"{layout.config}: model")
        saved_reference = read_json_object(layout.backbone)
        loaded = _get_backbone(config, backbone, tokenizer, saved_reference=saved_reference, file=layout.backbone)
        check_same_backbone(saved_reference, loaded.reference, file=layout.backbone)
        encoder = loaded.model
        trained = _prepare_depth(config, encoder, saved_reference.get("name"))
        if trained and config.finetune == "lora":
            encoder = load_lora_adapter(encoder, layout.adapter)
        elif trained:
            _load_encoder_weights(encoder, layout.encoder_weights, every_weight=trained == num_layers(encoder.config),
                                  names=trained_parameter_names(encoder, trained))
        model = cls(config, encoder, loaded.tokenizer, saved_reference)
        model.load_fusion_head(layout.fusion_head)
        model.set_trainable(trainable)
        return model.eval()

    def load_fusion_head(self, path: str | os.PathLike) -> None:
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise AlfiaError(f"{path}: fusion/head weights file is missing")
        try:
            state = load_file(str(path))
        except Exception as e:
            raise AlfiaError(f"{path}: unreadable or corrupt safetensors file ({e})") from None
        expected = self.fusion_head_state()
        # Runs saved before the state standardisation existed keep its identity default.
        missing = sorted(set(expected) - set(state) - {"state_mean", "state_scale"})
        unexpected = sorted(set(state) - set(expected))
        wrong_shape = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
                       if k in state and state[k].shape != v.shape]
        if missing or unexpected or wrong_shape:
            detail = "; ".join(x for x in (
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
                f"wrong shape {', '.join(wrong_shape[:3])}" if wrong_shape else "") if x)
            raise AlfiaError(f"{path}: weights do not fit this model (pooler={self.config.pooler}, "
                             f"hidden size {self.hidden_size}): {detail}")
        self.load_state_dict(state, strict=False)


def build_model(config: AlfiaConfig, *, backbone: nn.Module | None = None, tokenizer: Any = None) -> AlfiaModel:
    """A fresh ALFIA model: the backbone from ``config.backbone`` (or the one given), prepared for
    ``config.finetune``, with newly initialised pooler and head."""
    loaded = _get_backbone(config, backbone, tokenizer)
    trained = _prepare_depth(config, loaded.model, loaded.reference.get("name"))
    depth = num_layers(loaded.model.config)
    encoder = loaded.model
    if trained and config.finetune == "lora":
        encoder = apply_lora(loaded.model, config.lora, lora_layer_indices(depth, trained))
    return AlfiaModel(config, encoder, loaded.tokenizer, loaded.reference)


# -------------------------------------------------------------------- helpers
def _prepare_depth(config: AlfiaConfig, encoder: nn.Module, name: Any) -> int:
    """Prune ``encoder`` as ``config`` says, check that its depth holds the pooled layers, and return K, the
    number of top layers that train: the one depth check, for a new model and a loaded one alike."""
    prune_encoder(encoder, config.prune_layers)
    depth = num_layers(encoder.config)
    if pooler_layer_count(config) > depth:
        raise AlfiaError(f"n_fusion_layers={config.n_fusion_layers} is greater than the backbone's depth "
                         f"({depth} layers{' after pruning' if config.prune_layers else ''}: {name})")
    return trained_layer_count(config.train_layers, depth)


def _get_backbone(config: AlfiaConfig, model: nn.Module | None, tokenizer: Any, *,
                  saved_reference: dict[str, Any] | None = None, file: str | os.PathLike | None = None) -> Backbone:
    if model is None:
        if saved_reference is not None:
            loaded = load_backbone_from_reference(saved_reference, file=file)
        else:
            loaded = load_backbone(config.backbone)
        if tokenizer is not None:
            loaded.tokenizer = tokenizer
        return loaded
    if tokenizer is None:
        raise AlfiaError("a backbone was passed without its tokenizer; pass tokenizer= as well")
    if getattr(model, "peft_config", None):
        raise AlfiaError("the backbone passed already carries a peft adapter; pass the plain encoder")
    spec = config.backbone if saved_reference is None else saved_reference.get("spec")
    return Backbone(model=model, tokenizer=tokenizer,
                    reference=describe_backbone(model, spec=spec, source="injected",
                                                location=getattr(model.config, "name_or_path", None) or None))


def _effective_max_length(requested: int, tokenizer: Any, model_config: Any) -> int:
    limits = []
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions - family_of(model_config.model_type).position_offset(model_config))
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limits.append(model_max)
    limit = min(limits) if limits else requested
    if requested > limit:
        warnings.warn(f"max_length={requested} exceeds what the backbone accepts; texts are truncated to {limit} "
                      "tokens", UserWarning, stacklevel=3)
        return limit
    return requested



def _load_encoder_weights(encoder: nn.Module, path: Path, *, every_weight: bool, names: list[str]) -> None:
    """The fine-tuned weights: the whole encoder's, or exactly the trained top layers' (``names``)."""
    from safetensors.torch import load_file, load_model

    if not path.is_file():
        raise AlfiaError(f"{path}: encoder weights file is missing (the run fine-tuned encoder weights)")
    try:
        if every_weight:
            load_model(encoder, str(path), strict=True)
            return
        weights = load_file(str(path))
    except Exception as e:
        raise AlfiaError(f"{path}: encoder weights do not fit the backbone or are corrupt ({e})") from None
    params = dict(encoder.named_parameters())
    if set(weights) != set(names) or any(weights[n].shape != params[n].shape for n in names):
        extra, missing = sorted(set(weights) - set(names)), sorted(set(names) - set(weights))
        raise AlfiaError(f"{path}: encoder weights do not fit the run's trained layers "
                         f"(missing {missing[:3]}, unexpected {extra[:3]})")
    with torch.no_grad():
        for name in names:
            params[name].copy_(weights[name])
