"""The tiny offline BERT of the training tests (session-scoped: built once)."""

from training.conftest import tiny_backbone_dir  # noqa: F401  (a fixture)
