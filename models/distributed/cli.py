"""Command line: `python -m models.distributed embed ...` (from a checkout).

Errors in the input print one line and exit with status 2; a run the cluster could not
finish prints one line and exits with 1; Ctrl-C (or SIGTERM) stops it with 130, keeping
the finished tiles for `--resume`. On success the run's figures are printed as JSON.
"""

import argparse
import importlib.util
import json
import signal

from ..cli import run_cli
from ..embedding.defaults import DEFAULT_TILE_SIZE, DEVICES
from ..environment import install_command
from ..errors import CameoCancelled, CameoInputError

EPILOG = """\
outputs (in OUT): one cloud-optimised GeoTIFF per date (embedding_YYYY-MM-DD.tif, 7 bands F01..F07)
and embeddings.vrt listing all dates - the same files, with the same numbers, as cameo:embed.
While running, finished tiles are kept in OUT/.cameo-tiles/ (about T x 7 x 4 bytes per pixel);
after an interruption, the same command with --resume computes only the missing tiles.

examples:
  # this machine, one worker process per core
  python -m models.distributed embed --s2 out/belgium/s2_stack.tif --s1 out/belgium/s1_stack.tif \\
      --out out/belgium-embeddings

  # an existing cluster (stacks, output folder and this checkout on a disk all workers share)
  dask scheduler --host 10.0.0.1 --port 8786 &
  PYTHONPATH=$PWD dask worker tcp://10.0.0.1:8786 --nworkers 4 --nthreads 1   # on each machine
  python -m models.distributed embed --s2 /shared/s2_stack.tif --out /shared/emb --scheduler tcp://10.0.0.1:8786

exit status: 0 done, 2 bad input or arguments (one-line message), 1 the cluster could not finish,
130 interrupted (run again with --resume).
"""


def parse_bounds(text):
    """'xmin,xmax,ymin,ymax' (QGIS's order, stack CRS) -> (xmin, ymin, xmax, ymax)."""
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in text.split(","))
    except ValueError as error:
        raise CameoInputError(
            f"Extent '{text}' is not 'xmin,xmax,ymin,ymax' in the stack's CRS (four numbers, e.g. "
            "'501400,501800,5629100,5629600').") from error
    return xmin, ymin, xmax, ymax


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m models.distributed",
        description="Region-scale CAMEO embedding on Dask distributed: the engine of cameo:embed, one task "
                    "per tile, on this machine or on an existing Dask cluster.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    embed = commands.add_parser(
        "embed", help="embed Sentinel-2 (+ Sentinel-1) stacks into per-date 7-band embeddings",
        description="Embed CAMEO stacks (written by cameo:preparestack or python -m models.stack) tile by "
                    "tile as Dask tasks; identical numbers to cameo:embed.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    embed.add_argument("--s2", required=True, metavar="S2_STACK", help="the Sentinel-2 stack (s2_stack.tif)")
    embed.add_argument("--s1", metavar="S1_STACK", help="the Sentinel-1 stack (s1_stack.tif), optional")
    embed.add_argument("--out", required=True, metavar="FOLDER", help="output folder (created if needed)")
    embed.add_argument("--extent", metavar="XMIN,XMAX,YMIN,YMAX",
                       help="only this extent, in the stack's CRS (QGIS order); default the whole stack")
    embed.add_argument("--tile-size", type=positive_int, default=DEFAULT_TILE_SIZE, metavar="N",
                       help="tile edge in pixels, one task per tile (default %(default)s); does not change "
                            "the numbers, only memory per task and the number of tasks")
    embed.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="address of an existing Dask scheduler; default: an embedded LocalCluster on "
                            "127.0.0.1")
    embed.add_argument("--workers", type=positive_int, metavar="N",
                       help="worker processes of the embedded cluster (default: one per CPU core)")
    embed.add_argument("--threads-per-worker", type=positive_int, default=1, metavar="N",
                       help="task threads per worker of the embedded cluster (default %(default)s)")
    embed.add_argument("--onnx-threads", type=positive_int, default=1, metavar="N",
                       help="ONNX Runtime threads per task (default %(default)s: workers x threads already "
                            "fill the cores)")
    embed.add_argument("--device", choices=DEVICES, default="cpu",
                       help="ONNX Runtime device on the workers (default %(default)s)")
    embed.add_argument("--models-dir", metavar="FOLDER",
                       help="folder of the CAMEO ONNX models and SHA256SUMS (default: the bundled models/onnx); "
                            "must exist at the same path on every worker")
    embed.add_argument("--gpp", metavar="FOLDER",
                       help="also map daily GPP from the embeddings into FOLDER with the bundled GPP model "
                            "(as cameo:predictgpp; runs in this process after the embedding; with --s1, from "
                            "the Sentinel-2-only embedding, one more pass)")
    embed.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in FOLDER: finished tiles are not computed again")
    embed.add_argument("--no-progress", action="store_true", help="no progress bar")
    embed.add_argument("--verbose", action="store_true", help="show Dask's own warnings")
    return parser


def _stop_on_sigterm():
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv=None):
    return run_cli(_embed, argv, prog="python -m models.distributed")


def _embed(argv):
    args = build_parser().parse_args(argv)
    if importlib.util.find_spec("distributed") is None:
        raise CameoInputError(
            "Dask distributed is not installed: run `"
            f"{install_command(['dask==2024.12.1', 'distributed==2024.12.1'])}` "
            "(Debian 13: apt install python3-dask python3-distributed).")
    from .run import embed_distributed

    if args.gpp:
        from ..gpp.predict import check_gpp_output_folder

        check_gpp_output_folder(args.gpp)  # fail before hours of embedding, not after
    _stop_on_sigterm()
    try:
        run = embed_distributed(
            args.s2, args.out, s1_path=args.s1, bounds=parse_bounds(args.extent) if args.extent else None,
            tile_size=args.tile_size, scheduler=args.scheduler, workers=args.workers,
            threads_per_worker=args.threads_per_worker, onnx_threads=args.onnx_threads, device=args.device,
            models_dir=args.models_dir, resume=args.resume, progress=not args.no_progress,
            quiet=not args.verbose)
    except KeyboardInterrupt:
        raise CameoCancelled(f"interrupted; finished tiles are kept in {args.out}/.cameo-tiles: run the same "
                             "command with --resume to finish.") from None
    summary = run.summary()
    if args.gpp:
        from ..gpp.predict import predict_gpp

        gpp = predict_gpp(run.index_path, args.gpp, s2_stack=args.s2, models_dir=args.models_dir,
                          threads=args.onnx_threads)
        summary["gpp"] = {"index": gpp.index_path, "files": len(gpp.files),
                          "pixel_dates": gpp.pixel_dates, "seconds": round(gpp.seconds, 3)}
    print(json.dumps(summary))
