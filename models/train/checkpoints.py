"""Checkpoints of a training run: where each stage keeps them, saving and loading them
(`weights_only=True`: a checkpoint never runs code), and the trained models of a run.

Layout: `<runs_dir>/<config name>/<stage>/last.pt` and `best.pt` (see `loop`).
"""

import os

import torch

from .model import FusionModel, ModalityAutoencoder
from .spec import MODALITIES


def stage_dir(cfg, stage):
    return os.path.join(cfg["runs_dir"], cfg["name"], stage)


def save_checkpoint(path, payload):
    tmp = path + ".part"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def best_checkpoint(cfg, stage):
    return load_checkpoint(os.path.join(stage_dir(cfg, stage), "best.pt"))


def modality_autoencoder(modality, cfg):
    """A new autoencoder of `modality` ("S2" or "S1"): bands from MODALITIES, sizes from cfg."""
    return ModalityAutoencoder(len(MODALITIES[modality]["bands"]), cfg[modality.lower()])


def load_trained(cfg):
    """(s2, s1, fusion_model, stats) from the best checkpoints of a run, in eval mode."""
    s2, s1 = modality_autoencoder("S2", cfg), modality_autoencoder("S1", cfg)
    fm = FusionModel(cfg["fusion"], cfg["s2"], cfg["s1"])
    ck2, ck1, ckf = (best_checkpoint(cfg, stage) for stage in ("s2", "s1", "fusion"))
    s2.load_state_dict(ck2["model"])
    s1.load_state_dict(ck1["model"])
    fm.load_state_dict(ckf["model"])
    stats = {"S2": ck2["stats"]["S2"], "S1": ck1["stats"]["S1"]}
    return s2.eval(), s1.eval(), fm.eval(), stats
