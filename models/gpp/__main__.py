"""`python -m models.gpp --help`: evaluate the GPP model at a tower, or map GPP from embeddings."""

import sys
import warnings

from .cli import main

warnings.filterwarnings("ignore", category=UserWarning, module="rasterio")
sys.exit(main())
