"""Context-aware vs centre-only loss (the comparison the method rests on), S2 autoencoder.

    python -m models.train.compare --config bundled --minutes 10 [--runs-dir runs/compare]

Trains the same S2 model twice with the same seed, data and time budget - once with the
context-aware loss of the config, once with all weight on the central pixel of the
target frame (`s2.loss.context = false`) - then scores both best checkpoints on the same
fixed validation windows (belgium_0000280849BAC91C, inference date windows):
- centre: MAE of the central pixel of the target frame (what both losses optimise);
- ring 1: MAE of the 8 neighbouring pixels on the target frame;
- adjacent frames: MAE of the central pixel on the frames next to the target;
- window: MAE over the whole 15 x 15 x 11 window.
All in reflectance units, over valid pixels. Writes <runs-dir>/comparison.json.

Bundled vs paper-sized S2 autoencoder (the cost comparison in models/README.md):

    python -m models.train.compare --what size --minutes 10 --runs-dir runs/compare_size \
        --out models/train/results/comparison_bundled_vs_paper.json

trains the S2 architecture of `--config` (bundled) and of `--other` (paper) one after the
other with the same data, seed, loss, optimiser schedule, batch, threads and wall-clock
budget (the training section of `--config`; only the model sizes differ), evaluating only
once at the end of each budget (so in-run validation costs neither model budget), then
scores both with the same evaluator (plus central-pixel MAE per band, steps, seconds per
step, and the load average sampled during each run).
"""

import argparse
import copy
import json
import os
import threading
import time

import numpy as np
import torch

from .config import load_config
from .data import WindowSampler, load_chips, to_torch
from .loop import load_checkpoint, stage_dir, train_stage
from .model import ModalityAutoencoder
from .spec import MODALITIES


def score(cfg, run_cfg, val_windows=1024):
    """Scores of the best S2 checkpoint of run_cfg on fixed validation windows; cfg gives the
    data section, run_cfg the model sizes and run folder."""
    ck = load_checkpoint(os.path.join(stage_dir(run_cfg, "s2"), "best.pt"))
    model = ModalityAutoencoder(10, run_cfg["s2"])
    model.load_state_dict(ck["model"])
    model.eval()
    chips = load_chips(cfg["data"]["val_chips"], cfg["data"]["stack_dir"])
    batches = WindowSampler(chips, ck["stats"], cfg["data"], ("S2",), seed=0).fixed(val_windows)
    sums = {k: [0.0, 0.0] for k in ("centre", "ring1", "adjacent_frames", "window")}
    band_sum, band_n = np.zeros(10), 0
    with torch.no_grad():
        for batch in batches:
            b = to_torch(batch)
            _, rec = model(b["S2"]["x"], b["exists"], b["offsets"], b["target"])
            err = (rec - b["S2"]["y"]).abs().mean(2).numpy()          # [B, K, S, S]
            mask = (b["S2"]["mask"] * b["exists"][..., None, None]).numpy()
            tgt = batch["target"]
            idx = np.arange(len(tgt))
            centre_err = (rec - b["S2"]["y"]).abs().numpy()[idx, tgt, :, 7, 7]    # [B, C]
            keep = mask[idx, tgt, 7, 7] > 0
            band_sum += centre_err[keep].sum(0)
            band_n += int(keep.sum())
            sel = np.zeros_like(mask, dtype=bool)
            for name in sums:
                sel[:] = False
                for i, t in enumerate(tgt):
                    if name == "centre":
                        sel[i, t, 7, 7] = True
                    elif name == "ring1":
                        sel[i, t, 6:9, 6:9] = True
                        sel[i, t, 7, 7] = False
                    elif name == "adjacent_frames":
                        for k in (t - 1, t + 1):
                            if 0 <= k < sel.shape[1]:
                                sel[i, k, 7, 7] = True
                    else:
                        sel[i] = True
                m = sel & (mask > 0)
                sums[name][0] += float(err[m].sum())
                sums[name][1] += float(m.sum())
    bands = dict(zip(MODALITIES["S2"]["bands"], (band_sum / max(band_n, 1)).tolist()))
    return {k: v[0] / max(v[1], 1) for k, v in sums.items()} | {
        "steps": int(ck["step"]), "centre_per_band": bands, "centre_pixels": band_n, "val_windows": val_windows}


ARCH_KEYS = ("width", "token_dim", "heads", "temporal_layers", "ffn", "latent", "ca_reduction",
             "decoder_width", "decoder_hidden")


def _load_sampler(samples, stop, every=15.0):
    while not stop.wait(every):
        samples.append(os.getloadavg())


def compare_sizes(args):
    """Same-budget training of two S2 architectures; returns the result dict."""
    base = load_config(args.config)
    other = load_config(args.other)
    result = {"what": "s2 autoencoder, same training, different sizes", "minutes_each": args.minutes,
              "cpu_count": os.cpu_count(), "runs": {}}
    for name, arch_cfg in ((base["name"], base), (other["name"], other)):
        c = copy.deepcopy(base)
        c["name"] = name
        c["runs_dir"] = args.runs_dir
        for key in ARCH_KEYS:
            c["s2"][key] = arch_cfg["s2"][key]
        t = c["s2"]["train"]
        t["max_minutes"] = args.minutes
        t["max_steps"] = 10 ** 9
        t["eval_every"] = 10 ** 9          # evaluate once, when the budget is spent
        t["early_stopping_patience"] = 10 ** 9
        t["val_windows"] = 128             # in-run check only; the score below uses val_windows
        t["num_threads"] = args.threads
        entry = {"arch": {k: c["s2"][k] for k in ARCH_KEYS},
                 "params": sum(p.numel() for p in ModalityAutoencoder(10, c["s2"]).parameters())}
        if args.variant in ("both", name):
            samples, stop = [os.getloadavg()], threading.Event()
            sampler = threading.Thread(target=_load_sampler, args=(samples, stop), daemon=True)
            sampler.start()
            summary = train_stage("s2", c, quiet=True)
            stop.set()
            sampler.join()
            samples.append(os.getloadavg())
            one_min = [s[0] for s in samples]
            load = {"1min_min": min(one_min), "1min_mean": float(np.mean(one_min)), "1min_max": max(one_min),
                    "samples": len(samples)}
            with open(os.path.join(stage_dir(c, "s2"), "load.json"), "w", encoding="utf-8") as handle:
                json.dump(load, handle)
        else:
            with open(os.path.join(stage_dir(c, "s2"), "summary.json"), encoding="utf-8") as handle:
                summary = json.load(handle)
            with open(os.path.join(stage_dir(c, "s2"), "load.json"), encoding="utf-8") as handle:
                load = json.load(handle)
        entry.update(train_seconds=summary["seconds"], steps=summary["steps"],
                     seconds_per_step=summary["seconds"] / max(summary["steps"], 1),
                     train_samples=summary["steps"] * t["batch_size"], load_average=load)
        entry["score"] = score(base, c, val_windows=args.val_windows)
        result["runs"][name] = entry
    result["training"] = {k: base["s2"]["train"][k] for k in ("batch_size", "lr", "weight_decay", "warmup_steps",
                                                              "grad_clip")} | {"threads": args.threads}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="bundled")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--runs-dir", default="runs/compare")
    parser.add_argument("--variant", default="both",
                        help="loss: context, centre, both or score; size: both, score or one config name")
    parser.add_argument("--what", choices=["loss", "size"], default="loss",
                        help="loss: context-aware vs centre-only; size: --config vs --other architecture")
    parser.add_argument("--other", default="paper", help="size: the second config")
    parser.add_argument("--threads", type=int, default=2, help="size: torch threads for both runs")
    parser.add_argument("--val-windows", type=int, default=512, help="size: validation windows scored")
    parser.add_argument("--out", help="size: also write the result JSON here")
    args = parser.parse_args(argv)
    if args.what == "size":
        os.makedirs(args.runs_dir, exist_ok=True)
        result = compare_sizes(args)
        text = json.dumps(result, indent=1)
        for path in filter(None, (os.path.join(args.runs_dir, "comparison_size.json"), args.out)):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        print(text)
        return
    cfg = load_config(args.config)
    runs = {}
    for name, context in (("context", True), ("centre", False)):
        c = copy.deepcopy(cfg)
        c["runs_dir"] = os.path.join(args.runs_dir, name)
        c["s2"]["loss"]["context"] = context
        c["s2"]["train"]["max_minutes"] = args.minutes
        runs[name] = c
        if args.variant in (name, "both"):
            train_stage("s2", c, quiet=True)
    if args.variant in ("both", "score"):
        result = {name: score(cfg, c) for name, c in runs.items()}
        result["minutes_each"] = args.minutes
        with open(os.path.join(args.runs_dir, "comparison.json"), "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
