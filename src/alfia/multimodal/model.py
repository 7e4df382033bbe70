"""LeMoF, level-guided multimodal fusion (arXiv 2601.10092), over cached levels; and early fusion, its ablation.

The paper's summary (``shared/seeds/lemof-summary.md``) names three modules and gives no formulas, so the
equations below are ours, numbered as in ``docs/lemof.md``. Where the summary is vague the simplest faithful
choice was taken; each is marked *choice*.

Notation: modality m in 1..M with levels l in 1..L_m (lower to upper, :mod:`alfia.multimodal.levels`),
z_{m,l} the pooled level of a stay, D the fusion width.

1. Modality-aware level stacking.
   (1)  e_{m,l} = LN(W_{m,l} z~_{m,l} + b_{m,l}) + p_m + q_{m,l},  z~ = (z - mu_{m,l}) / sigma_{m,l}
   Each level is standardised (mean and SD per dimension, fitted on the train stays: levels of different
   encoders differ in scale by orders of magnitude), projected by its own linear map, and tagged with a
   learned modality embedding p_m and level embedding q_{m,l}. E_m = [e_{m,1}; ...; e_{m,L_m}] is the
   modality's level stack.
2. Level-guided multimodal fusion.
   (2)  alpha_m = softmax(a_m),  a_m in R^{L_m} learned     the level weighting of modality m (a_m starts at 0)
   (3)  s_m = sum_l alpha_{m,l} e_{m,l}                       the level-guided summary of modality m
   (4)  c_m = MHA(Q = s_m, K = V = [E_1; ...; E_M], bias = log alpha)   cross-modal attention
   (5)  u_m = LN(s_m + c_m),  l_fuse = MLP([u_1; ...; u_M])  the level-specific discriminative logit
   *Choice*: the level weights are one learned softmax per modality (not per stay), so they read as the
   importance of each layer (``level_weights.json``, the figure). Selection is soft by default: log alpha is
   added to the attention scores of eq. (4), so the attention mass a level can get is proportional to its
   weight and a level with weight ~0 is effectively not selected. With ``top_k`` set, the keys outside each
   modality's k heaviest levels are masked as well (hard selection, still following alpha as it learns).
   Each modality's summary queries the levels of every modality, its own included, so one modality alone
   still has a pool to attend over; with two or more the attention runs across them.
3. Integrated decision modelling.
   (6)  g_m = MLP_m(z~_{m,L_m})                               the global prediction of modality m
   (7)  logit = beta_0 l_fuse + sum_m beta_m g_m,  beta = softmax(b),  b in R^{M+1} learned
   (8)  loss = BCE(l_fuse) + sum_m BCE(g_m) + BCE(logit with l_fuse, g_m held fixed)
   *Choice*: a global head reads its modality's top level (the encoder's own output: the stable view each
   encoder was trained to predict from) with parameters of its own, and every part learns from its own loss;
   the decision weights beta learn on the combined logit with the parts' logits detached. So the global
   predictions are learned separately from the discriminative representation and only then combined; beta is
   the stability/discrimination trade-off, learned. Without global heads (an ablation), logit = l_fuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError

# The routing logits a_m (eq. 2) and b (eq. 7) are stored divided by this: Adam moves a parameter by about lr per
# step whatever its gradient, so unscaled they would barely leave uniform in a run of a few hundred steps.
ROUTING_SCALE = 10.0


@dataclass
class LemofConfig(JsonConfig):
    """The fusion's shape. ``modalities``/``level_names``/``level_widths`` are set from the level cache."""

    config_name = "model config"

    d_model: int = 64
    n_heads: int = 4
    dropout: float = 0.2
    head_hidden: int = 64
    top_k: int | None = None  # None: soft selection by the level weights (eq. 4); k: the k heaviest levels
    global_heads: bool = True  # eqs. (6)-(7); False: the ablation "LeMoF without global heads"
    modalities: list[str] = field(default_factory=list)
    level_names: dict[str, list[str]] = field(default_factory=dict)
    level_widths: dict[str, list[int]] = field(default_factory=dict)

    def validate(self) -> None:
        require(self.d_model >= 1 and self.n_heads >= 1 and not self.d_model % self.n_heads,
                f"d_model ({self.d_model}) must be a positive multiple of n_heads ({self.n_heads})")
        require(0.0 <= self.dropout < 1.0, f"dropout must lie in [0, 1), got {self.dropout}")
        require(self.top_k is None or self.top_k >= 1,
                f"top_k must be >= 1 (or None: soft selection), got {self.top_k}")

    def with_levels(self, levels: dict) -> "LemofConfig":
        """This config shaped for a level cache (modality -> ModalityLevels)."""
        return replace(self, modalities=list(levels), level_names={m: list(v.names) for m, v in levels.items()},
                       level_widths={m: list(v.widths) for m, v in levels.items()})


@dataclass
class LemofOutput:
    logit: torch.Tensor  # (B,) eq. (7)
    fused_logit: torch.Tensor  # (B,) eq. (5)
    global_logits: torch.Tensor | None  # (B, M) eq. (6)
    decision_weights: torch.Tensor | None  # (M + 1,) beta of eq. (7)


class LevelStandardiser(nn.Module):
    """z~ = (z - mu) / sigma per dimension, fitted once on the train stays (buffers, saved with the model)."""

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(dim=0))
        self.scale.copy_(x.std(dim=0, unbiased=False).clamp_min(1e-3))  # a constant dimension stays as it is

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


def _mlp(d_in: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, 1))


class LeMoF(nn.Module):
    """``forward(levels)`` takes, per modality in ``config.modalities`` order, the list of its level tensors
    ``(B, d_l)`` (lower to upper) and returns a :class:`LemofOutput`."""

    def __init__(self, config: LemofConfig):
        super().__init__()
        if not config.modalities:
            raise AlfiaError("LeMoF needs at least one modality with levels")
        self.config = config
        d, m = config.d_model, len(config.modalities)
        widths = config.level_widths
        self.standardise = nn.ModuleDict({mod: nn.ModuleList(LevelStandardiser(w) for w in widths[mod])
                                          for mod in config.modalities})
        self.project = nn.ModuleDict({mod: nn.ModuleList(nn.Sequential(nn.Linear(w, d), nn.LayerNorm(d))
                                                         for w in widths[mod]) for mod in config.modalities})  # eq. (1)
        self.modality_embedding = nn.Parameter(torch.zeros(m, d))  # p_m
        self.level_embedding = nn.ParameterDict({mod: nn.Parameter(torch.zeros(len(widths[mod]), d))
                                                 for mod in config.modalities})  # q_{m,l}
        nn.init.normal_(self.modality_embedding, std=0.02)
        for p in self.level_embedding.values():
            nn.init.normal_(p, std=0.02)
        self.level_logits = nn.ParameterDict({mod: nn.Parameter(torch.zeros(len(widths[mod])))
                                              for mod in config.modalities})  # a_m of eq. (2): uniform at start
        self.attention = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout, batch_first=True)  # eq. (4)
        self.norm = nn.LayerNorm(d)  # eq. (5)
        self.fusion_head = _mlp(m * d, config.head_hidden, config.dropout)  # eq. (5)
        if config.global_heads:
            self.global_heads = nn.ModuleDict({mod: _mlp(widths[mod][-1], config.head_hidden, config.dropout)
                                               for mod in config.modalities})  # eq. (6)
            self.decision_logits = nn.Parameter(torch.zeros(m + 1))  # b of eq. (7)

    @torch.no_grad()
    def fit_standardisation(self, levels: dict[str, list[torch.Tensor]]) -> None:
        for mod in self.config.modalities:
            for std, x in zip(self.standardise[mod], levels[mod]):
                std.fit(x.float())

    def level_weights(self) -> dict[str, torch.Tensor]:
        """alpha_m of eq. (2) per modality."""
        return {mod: torch.softmax(ROUTING_SCALE * self.level_logits[mod], dim=0) for mod in self.config.modalities}

    def decision_weights(self) -> torch.Tensor:
        """beta of eq. (7): the weights of l_fuse and of each modality's global logit."""
        return torch.softmax(ROUTING_SCALE * self.decision_logits, dim=0)

    def _attention_bias(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor:
        """(M, sum L_m) additive scores of eq. (4): log alpha, and -inf outside the top-k when ``top_k``."""
        parts = []
        for mod in self.config.modalities:
            bias = torch.log(alphas[mod].clamp_min(1e-12))
            k = self.config.top_k
            if k is not None and k < len(bias):
                keep = torch.zeros_like(bias, dtype=torch.bool)
                keep[torch.topk(alphas[mod].detach(), k).indices] = True
                bias = bias.masked_fill(~keep, float("-inf"))
            parts.append(bias)
        return torch.cat(parts).unsqueeze(0).expand(len(self.config.modalities), -1)

    def forward(self, levels: dict[str, list[torch.Tensor]]) -> LemofOutput:
        cfg = self.config
        alphas = self.level_weights()
        stacks, summaries, tops = [], [], []
        for i, mod in enumerate(cfg.modalities):
            if len(levels[mod]) != len(cfg.level_widths[mod]):
                raise AlfiaError(f"LeMoF was built for {len(cfg.level_widths[mod])} {mod} levels, "
                                 f"got {len(levels[mod])}")
            normed = [std(x.float()) for std, x in zip(self.standardise[mod], levels[mod])]
            tops.append(normed[-1])
            e = torch.stack([proj(x) for proj, x in zip(self.project[mod], normed)], dim=1)  # (B, L_m, D)
            e = e + self.modality_embedding[i] + self.level_embedding[mod]  # eq. (1)
            stacks.append(e)
            summaries.append(torch.einsum("l,bld->bd", alphas[mod], e))  # eq. (3)
        keys = torch.cat(stacks, dim=1)  # (B, sum L_m, D)
        queries = torch.stack(summaries, dim=1)  # (B, M, D)
        context, _ = self.attention(queries, keys, keys, attn_mask=self._attention_bias(alphas),
                                    need_weights=False)  # eq. (4)
        fused = self.norm(queries + context)  # eq. (5)
        fused_logit = self.fusion_head(fused.flatten(1)).squeeze(-1)
        if not cfg.global_heads:
            return LemofOutput(fused_logit, fused_logit, None, None)
        global_logits = torch.stack([self.global_heads[mod](top).squeeze(-1)
                                     for mod, top in zip(cfg.modalities, tops)], dim=1)  # eq. (6)
        beta = self.decision_weights()
        parts = torch.cat([fused_logit.detach()[:, None], global_logits.detach()], dim=1)
        return LemofOutput(parts @ beta, fused_logit, global_logits, beta)  # eq. (7)

    def loss(self, out: LemofOutput, y: torch.Tensor) -> torch.Tensor:
        """Eq. (8): every part from its own loss, the decision weights on the combined logit."""
        bce = nn.functional.binary_cross_entropy_with_logits
        total = bce(out.fused_logit, y)
        if out.global_logits is not None:
            total = total + sum(bce(out.global_logits[:, i], y) for i in range(out.global_logits.shape[1]))
            total = total + bce(out.logit, y)
        return total


class EarlyFusion(nn.Module):
    """The ablation "early fusion": each modality's top level, standardised, concatenated, and one MLP."""

    def __init__(self, config: LemofConfig):
        super().__init__()
        self.config = config
        widths = [config.level_widths[m][-1] for m in config.modalities]
        self.standardise = nn.ModuleList(LevelStandardiser(w) for w in widths)
        self.head = _mlp(sum(widths), config.head_hidden, config.dropout)

    @torch.no_grad()
    def fit_standardisation(self, levels: dict[str, list[torch.Tensor]]) -> None:
        for std, mod in zip(self.standardise, self.config.modalities):
            std.fit(levels[mod][-1].float())

    def forward(self, levels: dict[str, list[torch.Tensor]]) -> LemofOutput:
        x = torch.cat([std(levels[mod][-1].float()) for std, mod in zip(self.standardise, self.config.modalities)],
                      dim=1)
        logit = self.head(x).squeeze(-1)
        return LemofOutput(logit, logit, None, None)

    def loss(self, out: LemofOutput, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(out.logit, y)


def n_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
