"""`python -m models.stack --help`: prepare a CAMEO time stack from the command line."""

import sys
import warnings

from .cli import main

warnings.filterwarnings("ignore", category=UserWarning, module="rasterio")
sys.exit(main())
