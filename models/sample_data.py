"""Where the real sample data lives (Sentinel-1/2 chips, flux-tower GPP).

The data is never bundled: it is read from `$CAMEO_DATA`, by default `../shared/data`
beside the checkout.
"""

import os

ENV_VAR = "CAMEO_DATA"
# realpath: the plugin is usually a symlink into a QGIS profile; the data sits beside the checkout.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def sample_data_dir():
    """The sample data directory (it may not exist: see `sample_data_found`)."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return os.path.abspath(configured)
    return os.path.normpath(os.path.join(_REPO_ROOT, "..", "shared", "data"))


def sample_data_found():
    """True when the directory holds the sample chips (its `chips/` folder)."""
    return os.path.isdir(os.path.join(sample_data_dir(), "chips"))
