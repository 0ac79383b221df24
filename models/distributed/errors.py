"""Errors of distributed runs (no third-party imports)."""

from ..errors import CameoError


class DistributedRunError(CameoError):
    """The cluster could not finish the run (finished tiles are kept: resume it)."""
