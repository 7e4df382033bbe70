"""ALFIA: ICU in-hospital mortality from the first 24 hours, via clinical text and Adaptive Layer Fusion.

The package follows the data flow: ``cohorts`` -> ``text`` -> ``models`` -> ``training`` ->
``evaluation`` -> ``inference``, with ``baselines`` beside the model, ``api`` over them and ``cli`` on top.

The Python API (``alfia.api``) is reachable from here, loaded on first use so ``import alfia`` stays light::

    import alfia
    cohort = alfia.cohort.synthetic(n=3000, out="cohort.parquet")
    texts = alfia.encode(cohort)
    model = alfia.ALFIAClassifier(epochs=2).fit(texts)
    report = alfia.evaluate(model, split="test")
"""

__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself)
_API = {
    "cohort": ("alfia.api.cohort", None),
    "encode": ("alfia.api.data", "encode"),
    "load": ("alfia.api.data", "load"),
    "ALFIAClassifier": ("alfia.api.classifier", "ALFIAClassifier"),
    "evaluate": ("alfia.api.evaluate", "evaluate"),
    "card": ("alfia.evaluation.card", "write_card"),
    "baselines": ("alfia.baselines", None),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        module_name, attribute = _API[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'alfia' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
