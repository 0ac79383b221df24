"""Command line: `python -m models.stack` (from a checkout) prepares a CAMEO time stack.

Same parameters as the Processing algorithm cameo:preparestack. Errors in the input
print one line and exit with status 2; on success the output paths are printed as JSON.
"""

import argparse
import json
import re

from ..cli import run_cli
from ..errors import CameoInputError
from ..progress import ConsoleProgress
from .defaults import (
    DEFAULT_MAX_S1_GAP_DAYS,
    DEFAULT_MIN_VALID_FRACTION,
    DEFAULT_SPECKLE_FILTER,
    DEFAULT_SPECKLE_SIZE,
    HARMONIZED_CHOICES,
    RESAMPLING_CHOICES,
    S1_UNITS_CHOICES,
    SPECKLE_FILTERS,
)
from .options import StackOptions
from .prepare import prepare_stack

EPILOG = """\
outputs (in OUTPUT_FOLDER): s2_stack.tif, s1_stack.tif (with --s1), dates.csv;
format: docs/stack-format.md. Example, on the Belgian sample chip:

  python -m models.stack \\
    --s2 chips/belgium_00002806639B424A/S2_L2A_10m_*.nc chips/belgium_00002806639B424A/S2_L2A_20m_*.nc \\
    --s1 chips/belgium_00002806639B424A/S1_GRD-ASCENDING_20m_*.nc \\
    --output-folder out/belgium

exit status: 0 done, 2 bad input or arguments (one-line message), 1 failed, 130 cancelled.
"""


def parse_extent(text):
    """'xmin,xmax,ymin,ymax [EPSG:32631]' (QGIS's order) -> ((xmin, ymin, xmax, ymax), crs or None)."""
    match = re.fullmatch(r"\s*([^\[]+?)\s*(?:\[(.+)\])?\s*", text or "")
    if not match:
        raise CameoInputError(f"Extent '{text}' is not 'xmin,xmax,ymin,ymax [CRS]'.")
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in match.group(1).split(","))
    except ValueError as error:
        raise CameoInputError(
            f"Extent '{text}' is not 'xmin,xmax,ymin,ymax [CRS]' (four numbers, e.g. "
            "'501400,501800,5629100,5629600 [EPSG:32631]')."
        ) from error
    return (xmin, ymin, xmax, ymax), (match.group(2).strip() if match.group(2) else None)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m models.stack",
        description="Prepare analysis-ready Sentinel-2 (and Sentinel-1) time stacks on one 10 m grid "
                    "for CAMEO (the command-line twin of the QGIS algorithm cameo:preparestack).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--s2", nargs="+", required=True, metavar="FILE",
                        help="S2: Sentinel-2 L2A rasters: one file per date (GeoTIFF, JP2...), NetCDF/openEO/Earth "
                             "Engine cubes with a time dimension (10 m and 20 m files together), or SAFE folders/zips")
    parser.add_argument("--s2-bands", metavar="ORDER",
                        help="S2_BANDS: band names of files whose bands are not described, in order, e.g. "
                             "'B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12,SCL'; several orders separated by ';' "
                             "apply to files with that many bands")
    parser.add_argument("--s2-mask", nargs="+", metavar="FILE",
                        help="S2_MASK: mask raster(s) replacing SCL: one undated band for all dates, or one per date; "
                             "non-zero = valid unless --mask-valid-values")
    parser.add_argument("--s1", nargs="+", metavar="FILE",
                        help="S1: Sentinel-1 VV/VH rasters or cubes, any CRS and resolution, dB or linear power")
    parser.add_argument("--extent", metavar="'XMIN,XMAX,YMIN,YMAX [CRS]'",
                        help="EXTENT: processing extent (QGIS order); default the Sentinel-2 area")
    parser.add_argument("--crs", help="CRS: target CRS (projected, metres); default the Sentinel-2 CRS")
    parser.add_argument("--min-valid-fraction", type=float, default=DEFAULT_MIN_VALID_FRACTION,
                        help="MIN_VALID_FRACTION: drop dates with a smaller share of valid pixels (default %(default)s)")
    parser.add_argument("--max-s1-gap-days", type=float, default=DEFAULT_MAX_S1_GAP_DAYS,
                        help="MAX_S1_GAP_DAYS: larger gaps to the nearest S1 acquisition count as missing "
                             "(default %(default)s)")
    parser.add_argument("--mask-valid-values", metavar="LIST",
                        help="MASK_VALID_VALUES: mask values that mark a valid pixel (default SCL 4,5,6,7,11; "
                             "user mask: non-zero)")
    parser.add_argument("--harmonized", choices=HARMONIZED_CHOICES, default="auto",
                        help="HARMONIZED: is the -1000 DN offset of baseline >= 04.00 already removed? "
                             "(default %(default)s: from metadata, else by date)")
    parser.add_argument("--s1-units", choices=S1_UNITS_CHOICES, default="auto",
                        help="S1_UNITS: units of the S1 input (default %(default)s: from metadata or values)")
    parser.add_argument("--no-s1-smoothing", action="store_true",
                        help="S1_SMOOTHING off: no centred rolling mean over 3 acquisitions")
    parser.add_argument("--s1-speckle-filter", choices=SPECKLE_FILTERS, default=DEFAULT_SPECKLE_FILTER,
                        help="S1_SPECKLE_FILTER: speckle filter of each S1 acquisition on its own grid, in linear "
                             "power (default %(default)s; the bundled models were trained on lee 5)")
    parser.add_argument("--s1-speckle-size", type=int, default=DEFAULT_SPECKLE_SIZE,
                        help="S1_SPECKLE_SIZE: window in S1 pixels, odd, 3-11 (default %(default)s)")
    parser.add_argument("--resampling", choices=RESAMPLING_CHOICES, default="bilinear",
                        help="RESAMPLING of 20 m reflectance bands to 10 m (default %(default)s)")
    parser.add_argument("--substitute-b8a", action="store_true",
                        help="SUBSTITUTE_B8A: where an input has no B8A, take it from B08 (recorded in the stack's "
                             "metadata; changes the embeddings somewhat, see the README)")
    parser.add_argument("--block-size", type=int, default=1024, help="pixels per processing block side")
    parser.add_argument("--output-folder", required=True, help="OUTPUT_FOLDER: where the stacks are written")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    return parser


def options_from_args(args):
    """The StackOptions of parsed arguments."""
    extent, extent_crs = parse_extent(args.extent) if args.extent else (None, None)
    return StackOptions(
        s2=args.s2, output_folder=args.output_folder, s2_bands=args.s2_bands, s2_mask=args.s2_mask, s1=args.s1,
        extent=extent, extent_crs=extent_crs, crs=args.crs,
        min_valid_fraction=args.min_valid_fraction, max_s1_gap_days=args.max_s1_gap_days,
        mask_valid_values=args.mask_valid_values, harmonized=args.harmonized, s1_units=args.s1_units,
        s1_smoothing=not args.no_s1_smoothing, s1_speckle_filter=args.s1_speckle_filter,
        s1_speckle_size=args.s1_speckle_size, resampling=args.resampling, block_size=args.block_size,
        substitute_b8a=args.substitute_b8a)


def main(argv=None):
    return run_cli(_prepare, argv)


def _prepare(argv):
    args = build_parser().parse_args(argv)
    result = prepare_stack(options=options_from_args(args), progress=None if args.quiet else ConsoleProgress())
    print(json.dumps(result.outputs()))
