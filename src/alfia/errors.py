"""One exception type for bad input, so the CLI can print it as one clear line and exit non-zero.

``AlfiaError`` is a ``ValueError``, as scikit-learn's own errors for bad input are, so code written for any
estimator (``except ValueError``) handles ALFIA's too. ``NotFittedError`` (an unfitted ALFIAClassifier or zoo
model was asked to predict or save) is both an ``AlfiaError`` and scikit-learn's ``NotFittedError``; it is
made on first use, so ``import alfia.errors`` does not import scikit-learn.
"""


class AlfiaError(ValueError):
    """Bad input or a refused operation. The message names the file, row or column at fault."""


class LeakageError(AlfiaError):
    """A column carries outcome or post-window information."""


def __getattr__(name: str):
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError as SklearnNotFittedError

        class NotFittedError(AlfiaError, SklearnNotFittedError):
            """An estimator was used before ``fit`` (or ``from_pretrained``); sklearn's check_is_fitted raises
            the same kind."""

        NotFittedError.__module__, NotFittedError.__qualname__ = __name__, name
        globals()[name] = NotFittedError
        return NotFittedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
