"""Errors of distributed runs (no third-party imports)."""

from ..errors import CameoRunError


class DistributedRunError(CameoRunError):
    """The cluster could not finish the run (finished tiles are kept: resume it)."""
