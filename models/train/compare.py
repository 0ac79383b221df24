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
"""

import argparse
import copy
import json
import os

import numpy as np
import torch

from .config import load_config
from .data import WindowSampler, load_chips, to_torch
from .loop import load_checkpoint, stage_dir, train_stage
from .model import ModalityAutoencoder


def score(cfg, run_cfg, val_windows=1024):
    ck = load_checkpoint(os.path.join(stage_dir(run_cfg, "s2"), "best.pt"))
    model = ModalityAutoencoder(10, cfg["s2"])
    model.load_state_dict(ck["model"])
    model.eval()
    chips = load_chips(cfg["data"]["val_chips"], cfg["data"]["stack_dir"])
    batches = WindowSampler(chips, ck["stats"], cfg["data"], ("S2",), seed=0).fixed(val_windows)
    sums = {k: [0.0, 0.0] for k in ("centre", "ring1", "adjacent_frames", "window")}
    with torch.no_grad():
        for batch in batches:
            b = to_torch(batch)
            _, rec = model(b["S2"]["x"], b["exists"], b["offsets"], b["target"])
            err = (rec - b["S2"]["y"]).abs().mean(2).numpy()          # [B, K, S, S]
            mask = (b["S2"]["mask"] * b["exists"][..., None, None]).numpy()
            tgt = batch["target"]
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
    return {k: v[0] / max(v[1], 1) for k, v in sums.items()} | {"steps": int(ck["step"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="bundled")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--runs-dir", default="runs/compare")
    parser.add_argument("--variant", choices=["context", "centre", "both", "score"], default="both")
    args = parser.parse_args(argv)
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
