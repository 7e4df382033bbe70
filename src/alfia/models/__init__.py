"""The ALFIA model: a pre-trained encoder (+ LoRA), Adaptive Layer Fusion, Attentional Classifier Head.

    from alfia.models import AlfiaConfig, build_model, AlfiaModel
    model = build_model(AlfiaConfig())                 # offline all-MiniLM-L6-v2 + LoRA + ALF + ACH
    batch = model.tokenize(["72 year old male ..."])
    out = model(**batch)                               # out.logits (B,), out.embedding (B, d), out.layer_weights
    model.save_pretrained(run_dir); AlfiaModel.from_pretrained(run_dir)
"""

from alfia.models.adaptive_layer_fusion import AdaptiveLayerFusion
from alfia.models.alfia_model import AlfiaModel, AlfiaOutput, build_model
from alfia.models.attentional_classifier_head import AttentionalClassifierHead
from alfia.models.backbone import Backbone, default_backbone_path, load_backbone
from alfia.models.config import FINETUNE_MODES, AlfiaConfig, LoraSettings
from alfia.models.poolers import POOLERS, CLSPooler, MaxPooler, MeanPooler, PoolerSpec, StaticMeanPooler, build_pooler

__all__ = [
    "AdaptiveLayerFusion", "AlfiaConfig", "AlfiaModel", "AlfiaOutput", "AttentionalClassifierHead", "Backbone",
    "CLSPooler", "FINETUNE_MODES", "LoraSettings", "MaxPooler", "MeanPooler", "POOLERS", "PoolerSpec",
    "StaticMeanPooler", "build_model", "build_pooler", "default_backbone_path", "load_backbone",
]
