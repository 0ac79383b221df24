"""The training loop of every stage: AdamW, linear warm-up then plateau decay, early
stopping, gradient clipping, seeds, resumable checkpoints (saved and loaded with
`weights_only=True`), AMP on CUDA only, DistributedDataParallel under `torchrun`
(gloo on CPU, nccl on CUDA), a tqdm bar, a CSV log and a loss-curve PNG per run.

Checkpoints in `<runs_dir>/<config name>/<stage>/`: `last.pt` (everything needed to
continue exactly: weights, optimiser, schedule, best score, data-sampler RNG state) and
`best.pt` (weights of the best validation score + normalisation statistics + config),
selected by the validation MAE of the central pixel of the target frame.
"""

import csv
import json
import os
import random
import time

import numpy as np
import torch
from torch import nn

from .checkpoints import (best_checkpoint, load_checkpoint, modality_autoencoder, save_checkpoint,
                          stage_dir)
from .data import WindowSampler, compute_stats, load_chips, speckle_setting, to_torch
from .loss import ContextLoss
from .model import FusionModel


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def dist_info():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def setup_distributed(device):
    world, rank, local = dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, rank


def pick_device():
    if torch.cuda.is_available():
        _, _, local = dist_info()
        return torch.device("cuda", local)
    return torch.device("cpu")


def plot_curves(csv_path, png_path, title):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = list(csv.DictReader(open(csv_path, encoding="utf-8")))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for split, style in (("train", "-"), ("val", "o-")):
        pts = [(int(r["step"]), float(r["loss"])) for r in rows if r["split"] == split]
        if pts:
            ax.plot(*zip(*pts), style, label=f"{split} loss", ms=3, lw=1)
    pts = [(int(r["step"]), float(r["centre_mae"])) for r in rows if r["split"] == "val" and r["centre_mae"]]
    if pts:
        ax.plot(*zip(*pts), "s--", label="val centre MAE", ms=3, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


class Stage:
    """One training stage as hooks (the pattern of torchgeo's trainers/base.py), which
    `train_stage` drives the same way for every stage: `configure_data` (chips and
    normalisation statistics), `configure_models`, `configure_losses`, `trainable` (the
    parameters the optimiser updates) and `forward` (a batch's loss and centre errors)."""

    modalities = ()
    find_unused_parameters = False  # for DistributedDataParallel

    def __init__(self, name, cfg, device):
        self.name, self.cfg, self.device = name, cfg, device
        data = cfg["data"]
        self.speckle = speckle_setting(cfg)  # the Sentinel-1 preparation of the config's stacks
        self.train_chips = load_chips(data["train_chips"], data["stack_dir"], self.speckle)
        self.val_chips = load_chips(data["val_chips"], data["stack_dir"], self.speckle)
        self.stats = self.configure_data()
        self.model = self.configure_models().to(device)
        self.configure_losses()

    def configure_data(self):
        """The normalisation statistics {modality: {"mean", "std"}}; may narrow `train_chips`."""
        raise NotImplementedError

    def configure_models(self):
        """The model the stage trains (and saves in its checkpoints)."""
        raise NotImplementedError

    def configure_losses(self):
        raise NotImplementedError

    def trainable(self):
        return list(self.model.parameters())

    def forward(self, model, b, rng=None):
        """(loss, terms, {modality: centre abs errors [B, C]}) of batch `b`; `rng` drives the
        training-only randomness (None when validating)."""
        raise NotImplementedError


class ModalityStage(Stage):
    """The autoencoder of one sensor: stage "s2" or "s1"."""

    def __init__(self, name, cfg, device):
        self.modality = name.upper()
        self.modalities = (self.modality,)
        super().__init__(name, cfg, device)

    def configure_data(self):
        data = self.cfg["data"]
        # config key only for S1: extra chips with Sentinel-1 alone
        extra = load_chips(data.get(f"{self.name}_extra_train_chips", []), data["stack_dir"], self.speckle)
        self.train_chips = [c for c in self.train_chips + extra if c.values(self.modality) is not None]
        return compute_stats(self.train_chips)

    def configure_models(self):
        return modality_autoencoder(self.modality, self.cfg)

    def configure_losses(self):
        self.loss = ContextLoss(**self.cfg[self.name]["loss"])

    def forward(self, model, b, rng=None):
        x = b[self.modality]
        _, rec = model(x["x"], b["exists"], b["offsets"], b["target"])
        loss, terms = self.loss(rec, x["y"], x["mask"], b["exists"], b["target"])
        return loss, terms, {self.modality: _centre_err(rec, x, b["target"])}


class FusionStage(Stage):
    """The fusion model on the two trained (frozen, unless fusion.freeze_encoders is false)
    autoencoders, reconstructing both sensors through their decoders."""

    modalities = ("S2", "S1")
    find_unused_parameters = True

    def configure_data(self):
        self.checkpoints = {mod: best_checkpoint(self.cfg, mod.lower()) for mod in self.modalities}
        return {mod: ck["stats"][mod] for mod, ck in self.checkpoints.items()}

    def configure_models(self):
        encoders = []
        for mod in self.modalities:
            ae = modality_autoencoder(mod, self.cfg).to(self.device)
            ae.load_state_dict(self.checkpoints[mod]["model"])
            ae.eval()
            ae.requires_grad_(False)
            if not self.cfg["fusion"]["freeze_encoders"]:
                for part in (ae.frame, ae.temporal):
                    part.requires_grad_(True)
            encoders.append(ae)
        self.s2, self.s1 = encoders
        del self.checkpoints
        return FusionModel(self.cfg["fusion"], self.cfg["s2"], self.cfg["s1"])

    def configure_losses(self):
        self.loss_s2 = ContextLoss(**self.cfg["s2"]["loss"])
        self.loss_s1 = ContextLoss(**self.cfg["s1"]["loss"])

    def trainable(self):
        params = list(self.model.parameters())
        if not self.cfg["fusion"]["freeze_encoders"]:
            params += [p for m in (self.s2, self.s1) for p in m.parameters() if p.requires_grad]
        return params

    def forward(self, model, b, rng=None):
        grad = not self.cfg["fusion"]["freeze_encoders"] and torch.is_grad_enabled()
        with torch.set_grad_enabled(grad):
            z2 = self.s2.encode(b["S2"]["x"], b["exists"], b["offsets"], b["target"])
            z1 = self.s1.encode(b["S1"]["x"], b["exists"], b["offsets"], b["target"])
        present = b["s1_present"]
        if rng is not None:  # modality dropout: learn the S1-missing path
            drop = torch.from_numpy((rng.random(present.shape[0]) < self.cfg["fusion"]["p_drop_s1"]).astype(np.float32))
            present = present * (1 - drop.to(present.device))
        _, in2, in1 = model(z2, z1, b["gap"], present)
        r2 = self.s2.decoder(in2, b["offsets"])
        r1 = self.s1.decoder(in1, b["offsets"])
        l2, t2 = self.loss_s2(r2, b["S2"]["y"], b["S2"]["mask"], b["exists"], b["target"])
        l1, t1 = self.loss_s1(r1, b["S1"]["y"], b["S1"]["mask"], b["exists"], b["target"])
        f = self.cfg["fusion"]
        terms = {**{f"s2_{k}": v for k, v in t2.items()}, **{f"s1_{k}": v for k, v in t1.items()}}
        return f["loss_s2"] * l2 + f["loss_s1"] * l1, terms, {
            "S2": _centre_err(r2, b["S2"], b["target"]), "S1": _centre_err(r1, b["S1"], b["target"])}


STAGES = {"s2": ModalityStage, "s1": ModalityStage, "fusion": FusionStage}


def _centre_err(rec, x, target):
    """Absolute error of the central pixel of the target frame [B, C], NaN where invalid."""
    idx = torch.arange(rec.shape[0], device=rec.device)
    c = rec.shape[-1] // 2
    err = (rec[idx, target, :, c, c] - x["y"][idx, target, :, c, c]).abs()
    valid = x["mask"][idx, target, c, c] > 0
    return torch.where(valid[:, None], err, torch.full_like(err, float("nan")))


def evaluate(stage, model, val_batches, device):
    """Mean loss and per-band central-pixel MAE (model scale) on the fixed validation windows."""
    model.eval()
    losses, errs = [], {}
    with torch.no_grad():
        for batch in val_batches:
            b = to_torch(batch, device)
            loss, _, centre = stage.forward(model, b)
            losses.append(float(loss))
            for mod, e in centre.items():
                errs.setdefault(mod, []).append(e.cpu().numpy())
    model.train()
    per_band = {mod: np.nanmean(np.concatenate(v), axis=0) for mod, v in errs.items()}
    # selection score: S2 MAE (S1 for the S1 stage), both averaged for fusion
    score = float(np.mean([per_band[m].mean() for m in per_band]))
    return float(np.mean(losses)), score, per_band


def train_stage(stage_name, cfg, resume=False, max_steps=None, quiet=False, log=print):
    """Train one stage ('s2', 's1' or 'fusion'); returns a summary dict."""
    tcfg = cfg[stage_name]["train"]
    device = pick_device()
    world, rank = setup_distributed(device)
    if tcfg["num_threads"]:
        torch.set_num_threads(int(tcfg["num_threads"]))
    seed_everything(cfg["seed"] + rank)
    out = stage_dir(cfg, stage_name)
    os.makedirs(out, exist_ok=True)
    stage = STAGES[stage_name](stage_name, cfg, device)
    model = stage.model
    model.train()
    sampler = WindowSampler(stage.train_chips, stage.stats, cfg["data"], stage.modalities, seed=cfg["seed"] + 1000 * rank)
    val_sampler = WindowSampler(stage.val_chips, stage.stats, cfg["data"], stage.modalities, seed=0)
    val_batches = val_sampler.fixed(tcfg["val_windows"])
    dropout_rng = np.random.default_rng(cfg["seed"] + 7 + rank)
    ddp_model = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=stage.find_unused_parameters)
    optimizer = torch.optim.AdamW(stage.trainable(), lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    state = {"step": 0, "best": float("inf"), "since_best": 0, "since_plateau": 0, "lr_scale": 1.0, "seconds": 0.0}
    last_path, best_path = os.path.join(out, "last.pt"), os.path.join(out, "best.pt")
    csv_path = os.path.join(out, "log.csv")
    fields = ["step", "split", "loss", "centre_mae", "lr", "seconds", "terms"]
    if resume and os.path.isfile(last_path):
        ck = load_checkpoint(last_path)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        state.update(json.loads(ck["state"]))
        sampler.set_state(ck["sampler"])
        dropout_rng.bit_generator.state = json.loads(ck["dropout_rng"])
        torch.set_rng_state(ck["torch_rng"])
        log(f"[{stage_name}] resumed at step {state['step']}")
    elif rank == 0:
        with open(csv_path, "w", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fields).writeheader()
    steps = max_steps or tcfg["max_steps"]
    budget = tcfg["max_minutes"] * 60.0
    started = time.perf_counter() - state["seconds"]
    bar = None
    if rank == 0 and not quiet:
        from tqdm import tqdm
        bar = tqdm(total=steps, initial=state["step"], desc=stage_name, dynamic_ncols=True, mininterval=5)
    running = []
    stop_reason = "max_steps"

    def write_row(row):
        if rank == 0:
            with open(csv_path, "a", newline="", encoding="utf-8") as handle:
                csv.DictWriter(handle, fields).writerow(row)

    def checkpoint_payload():
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": json.dumps(state),
                "sampler": sampler.get_state(), "dropout_rng": json.dumps(dropout_rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(), "config": json.dumps(cfg), "stats": stage.stats}

    while state["step"] < steps:
        step = state["step"]
        lr = tcfg["lr"] * state["lr_scale"] * min(1.0, (step + 1) / max(1, tcfg["warmup_steps"]))
        for group in optimizer.param_groups:
            group["lr"] = lr
        b = to_torch(sampler.batch(tcfg["batch_size"]), device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            loss, terms, _ = stage.forward(ddp_model, b, rng=dropout_rng)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(stage.trainable(), tcfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        state["step"] += 1
        running.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(running[-20:]):.4f}", refresh=False)
        state["seconds"] = time.perf_counter() - started
        evaluate_now = state["step"] % tcfg["eval_every"] == 0 or state["step"] >= steps or state["seconds"] > budget
        if state["step"] % 20 == 0 or evaluate_now:
            write_row({"step": state["step"], "split": "train", "loss": np.mean(running[-20:]), "centre_mae": "",
                       "lr": lr, "seconds": round(state["seconds"], 1), "terms": json.dumps(terms)})
        if evaluate_now:
            val_loss, score, per_band = evaluate(stage, model, val_batches, device)
            improved = score < state["best"]
            if improved:
                state["best"], state["since_best"], state["since_plateau"] = score, 0, 0
                if rank == 0:
                    save_checkpoint(best_path, {"model": model.state_dict(), "stats": stage.stats, "config": json.dumps(cfg),
                                                "step": state["step"], "score": score,
                                                "per_band": {m: [float(v) for v in e] for m, e in per_band.items()}})
            else:
                state["since_best"] += 1
                state["since_plateau"] += 1
                if state["since_plateau"] >= tcfg["plateau_patience"]:
                    state["lr_scale"] *= tcfg["plateau_factor"]
                    state["since_plateau"] = 0
            write_row({"step": state["step"], "split": "val", "loss": val_loss, "centre_mae": score, "lr": lr,
                       "seconds": round(state["seconds"], 1),
                       "terms": json.dumps({m: [round(float(v), 5) for v in e] for m, e in per_band.items()})})
            if rank == 0:
                save_checkpoint(last_path, checkpoint_payload())
                if not quiet:
                    log(f"[{stage_name}] step {state['step']} val loss {val_loss:.5f} centre MAE {score:.5f}"
                        f"{' *' if improved else ''} lr {lr:.2e} {state['seconds']:.0f}s")
            if state["since_best"] >= tcfg["early_stopping_patience"]:
                stop_reason = "early_stopping"
                break
            if state["seconds"] > budget:
                stop_reason = "time_budget"
                break
    if bar is not None:
        bar.close()
    if rank == 0:
        save_checkpoint(last_path, checkpoint_payload())
        plot_curves(csv_path, os.path.join(out, "loss_curve.png"), f"{cfg['name']} {stage_name}")
    summary = {"stage": stage_name, "steps": state["step"], "best_score": state["best"], "seconds": state["seconds"],
               "stop_reason": stop_reason, "dir": out, "world_size": world}
    if rank == 0:
        with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=1)
    return summary
