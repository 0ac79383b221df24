"""`python -m models.distributed embed --help`: embed stacks on Dask distributed."""

import sys
import warnings

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    from .cli import main

    warnings.filterwarnings("ignore", category=UserWarning, module="rasterio")
    sys.exit(main())
