"""Defaults and choices of an embedding run (no third-party imports)."""

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_TILE_SIZE = 256
