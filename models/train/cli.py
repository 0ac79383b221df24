"""Command line: `python -m models.train {s2,s1,fusion,gpp,export,evaluate} --config bundled`.

Stages, in order: `s2` and `s1` (modality autoencoders; independent, may run in
parallel), `fusion` (needs both), `export` (ONNX + metadata + SHA256SUMS + the parity
check on the validation chip + the cost count), `evaluate` (model-card figures).
Multi-GPU / multi-process: `torchrun --nproc_per_node=2 -m models.train s2 --config ...`.
"""

import argparse
import json
import os
import sys

from ..cli import run_cli
from ..errors import CameoInputError


class ConfigError(CameoInputError):
    """A config the command line cannot use (reported as one line, exit status 2)."""


def _config(args):
    from .config import CONFIG_DIR, load_config

    overrides = {}
    if args.runs_dir:
        overrides["runs_dir"] = args.runs_dir
    where = args.config if os.path.isfile(args.config) else os.path.join(CONFIG_DIR, f"{args.config}.json")
    try:
        cfg = load_config(args.config, overrides)
    except FileNotFoundError:
        named = os.sep not in args.config and not args.config.endswith(".json")
        raise ConfigError(f"--config {args.config}: no such config file" + (f" ({where})" if named else "")) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config {where}: malformed JSON: {exc}") from None
    except KeyError as exc:
        raise ConfigError(f"--config {where}: {exc.args[0] if exc.args else exc}") from None
    except (OSError, UnicodeDecodeError, TypeError, AttributeError) as exc:
        raise ConfigError(f"--config {where}: cannot use it: {exc}") from None
    for item in args.set or []:
        key, _, value = item.partition("=")
        node = cfg
        *path, last = key.split(".")
        for part in path:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"--set {key}: unknown config key")
            node = node[part]
        if not isinstance(node, dict) or last not in node:
            raise ConfigError(f"--set {key}: unknown config key")
        try:
            node[last] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--set {key}: value is not JSON ({exc})") from None
    return cfg


PROG = "python -m models.train"


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["s2", "s1", "fusion", "gpp", "export", "evaluate"])
    parser.add_argument("--config", default="bundled", help="config name in models/train/configs or a JSON path")
    parser.add_argument("--runs-dir", help="where checkpoints, logs and curves go (default: config runs_dir)")
    parser.add_argument("--resume", action="store_true", help="continue from <run>/<stage>/last.pt")
    parser.add_argument("--max-steps", type=int, help="override train.max_steps")
    parser.add_argument("--set", action="append", metavar="KEY=JSON",
                        help="override a config value, e.g. --set s2.loss.context=false")
    parser.add_argument("--out", default=None, help="export: output folder (default: config export.out_dir)")
    parser.add_argument("--no-check", action="store_true", help="export: skip the parity check")
    parser.add_argument("--max-pixel-dates", type=int, default=20000,
                        help="evaluate: decode this many random valid pixel-dates (0 = all)")
    parser.add_argument("--data", help="gpp: .npz with x [N, window_days, 7] and y [N] (g C m-2 d-1)")
    return parser


def main(argv=None):
    return run_cli(_run, argv, prog=PROG)


def _run(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = _config(args)
    if args.stage in ("s2", "s1", "fusion"):
        from .loop import train_stage
        summary = train_stage(args.stage, cfg, resume=args.resume, max_steps=args.max_steps)
        print(json.dumps(summary))
    elif args.stage == "export":
        from .export import run_export
        report = run_export(cfg, args.out or cfg["export"]["out_dir"], check=not args.no_check)
        print(json.dumps(report, indent=1, default=float))
    elif args.stage == "evaluate":
        from .evaluate import evaluate_run
        print(json.dumps(evaluate_run(cfg, max_pixel_dates=args.max_pixel_dates or None), indent=1, default=float))
    elif args.stage == "gpp":
        if not args.data:
            parser.error("gpp needs --data windows.npz (x [N, window_days, 7], y [N])")
        from .gpp_small import train_on_windows
        print(json.dumps(train_on_windows(cfg, args.data, max_steps=args.max_steps), indent=1))


if __name__ == "__main__":
    sys.exit(main())
