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


class ConfigError(Exception):
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


def load_trained(cfg):
    """(s2, s1, fusion_model, stats) from the best checkpoints of a run."""
    from .loop import load_checkpoint, stage_dir
    from .model import FusionModel, ModalityAutoencoder

    s2 = ModalityAutoencoder(10, cfg["s2"])
    s1 = ModalityAutoencoder(2, cfg["s1"])
    fm = FusionModel(cfg["fusion"], cfg["s2"], cfg["s1"])
    ck2 = load_checkpoint(os.path.join(stage_dir(cfg, "s2"), "best.pt"))
    ck1 = load_checkpoint(os.path.join(stage_dir(cfg, "s1"), "best.pt"))
    ckf = load_checkpoint(os.path.join(stage_dir(cfg, "fusion"), "best.pt"))
    s2.load_state_dict(ck2["model"])
    s1.load_state_dict(ck1["model"])
    fm.load_state_dict(ckf["model"])
    stats = {"S2": ck2["stats"]["S2"], "S1": ck1["stats"]["S1"]}
    return s2.eval(), s1.eval(), fm.eval(), stats


def training_summary(cfg):
    d = cfg["data"]
    return (f"trained on CAMEO stacks of {', '.join(d['train_chips'])} (WorldCereal chips, Sentinel-2 L2A + "
            f"Sentinel-1 GRD ascending, Belgium 2017-2018); validated on {', '.join(d['val_chips'])} "
            f"(another place, 2018-2019); config {cfg['name']} {cfg['version']}")


def run_export(cfg, out_dir, check=True, threads=None):
    import numpy as np

    from .cost import dense_cost_per_pixel_date, window_cost_per_sample
    from .data import ensure_stacks, speckle_setting
    from .export import export_models, parity_check, reconstruction_parity
    from ..stack import read_stack

    s2, s1, fm, stats = load_trained(cfg)
    names = export_models(cfg, s2, s1, fm.fusion, stats, out_dir, training_summary(cfg), heads=fm)
    report = {"files": {n: os.path.getsize(os.path.join(out_dir, n)) for n in names}}
    report["cost_dense_per_pixel_date"] = dense_cost_per_pixel_date(out_dir)
    report["cost_window_macs"] = window_cost_per_sample(out_dir)["macs"]
    if check:
        chip = cfg["data"]["val_chips"][0]
        p2, p1 = ensure_stacks(chip, cfg["data"]["stack_dir"], s1_speckle=speckle_setting(cfg))
        a, b = read_stack(p2), read_stack(p1)
        t_n, _, h, w = a.values.shape
        rng = np.random.default_rng(0)
        points = [(0, 0, 0), (t_n - 1, h - 1, w - 1), (1, 0, w - 1), (t_n - 2, h - 1, 0), (2, 3, 60), (t_n - 3, 61, 2)]
        points += [(int(rng.integers(t_n)), int(rng.integers(h)), int(rng.integers(w))) for _ in range(26)]
        r = parity_check(out_dir, s2, s1, fm.fusion, a.values, a.dates, a.bands, points, b.values, b.bands,
                         b.s1_gap_days, threads=threads)
        pixel_dates = t_n * h * w
        report["parity"] = {"chip": chip, "points": len(points), "onnx_vs_torch": r["onnx_vs_torch"],
                            "dense_vs_window": r["dense_vs_window"], "dense_seconds": r["dense_seconds"],
                            "pixel_dates": pixel_dates, "pixel_dates_per_s": pixel_dates / r["dense_seconds"]}
        report["parity"]["reconstruction_onnx_vs_torch"] = reconstruction_parity(out_dir, s2, fm, r["dense"], points)
        if r["onnx_vs_torch"] > 1e-5 or r["dense_vs_window"] > 1e-4 or report["parity"]["reconstruction_onnx_vs_torch"] > 1e-5:
            raise SystemExit(f"Export check FAILED: {report['parity']}")
    with open(os.path.join(cfg["runs_dir"], cfg["name"], "export_report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__,
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
    args = parser.parse_args(argv)
    try:
        cfg = _config(args)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.stage in ("s2", "s1", "fusion"):
        from .loop import train_stage
        summary = train_stage(args.stage, cfg, resume=args.resume, max_steps=args.max_steps)
        print(json.dumps(summary))
    elif args.stage == "export":
        report = run_export(cfg, args.out or cfg["export"]["out_dir"], check=not args.no_check)
        print(json.dumps(report, indent=1, default=float))
    elif args.stage == "evaluate":
        from .evaluate import evaluate_run
        print(json.dumps(evaluate_run(cfg, max_pixel_dates=args.max_pixel_dates or None), indent=1, default=float))
    elif args.stage == "gpp":
        if not args.data:
            parser.error("gpp needs --data windows.npz (x [N, window_days, 7], y [N])")
        from .gpp import train_gpp
        print(json.dumps(train_gpp(cfg, args.data, max_steps=args.max_steps), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
