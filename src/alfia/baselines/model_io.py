"""The scikit-learn objects of a saved zoo model, in skops files (never pickle).

skops rebuilds only the types it is told to trust: its own defaults (scikit-learn's estimators, NumPy arrays,
builtins) plus ``TRUSTED_TYPES``, the few others the zoo's fitted objects hold. A file naming any other type is
refused, with the types it names, before anything in it is built.
"""

from __future__ import annotations

from pathlib import Path

from alfia.errors import AlfiaError

# Beyond skops's defaults: the zoo's own preprocessing steps, and what fitted scikit-learn objects carry
# (a dtype in OrdinalEncoder/SimpleImputer, the trees of the forests, the MLP's Adam state).
TRUSTED_TYPES = (
    "alfia.baselines.preprocessing.NativeCategoricals",
    "alfia.baselines.preprocessing.TokenizerInputs",
    "alfia.baselines.preprocessing._FloatNumerics",
    "alfia.baselines.preprocessing._ObjectCategoricals",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
)


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise AlfiaError(f"{path}: missing; the saved model is incomplete (retrain it with --overwrite)")
    return path


def dump_skops(obj, path: Path) -> Path:
    import skops.io as sio

    sio.dump(obj, path)
    return path


def load_skops(path: Path):
    """The object in a skops file; an AlfiaError naming the file if it is missing, unreadable or names a type
    outside skops's defaults and ``TRUSTED_TYPES``."""
    import skops.io as sio

    require_file(path)
    try:
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    except Exception as e:  # not a zip, no schema: skops's many errors for a damaged file
        raise AlfiaError(f"{path}: not a readable skops file ({type(e).__name__}: {e})") from None
    if untrusted:
        raise AlfiaError(f"{path}: refusing to load it: it names type(s) a saved zoo model never holds: "
                         f"{', '.join(untrusted)}")
    try:
        return sio.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as e:
        raise AlfiaError(f"{path}: not a readable skops file ({type(e).__name__}: {e})") from None
