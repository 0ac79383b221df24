"""Training windows from CAMEO time stacks (docs/stack-format.md, read with models.stack).

- Stacks: `runs/stacks/<chip>/{s2,s1}_stack.tif`, made from the shared NetCDF chips by
  `models.stack.prepare_stack` when missing (`ensure_stacks`).
- Normalisation: per-band mean and std of the model-scaled values (S2 reflectance clipped
  to [0, 1]; S1 (clip(dB, -30, 5) + 30) / 35) over the valid pixels of the training chips;
  stored in the checkpoint and in the ONNX metadata.
- Model input: exactly `models.runtime.preprocess` (the function the plugin runs): the
  normalised bands, invalid pixels filled with 0 (the training mean, a window-independent
  value) plus a validity channel. Pixels outside the raster are invalid (NaN halo).
- Reconstruction targets: the model-scaled values, with a validity mask for the loss.
- Dates, as the method samples them: a block of `block` (20) consecutive stack dates, 11
  of them drawn at random and sorted, total span < `max_span_days` (200); the target is the
  central frame, or (probability `p_offcentre`) any frame, so that edge dates are learnt.
  With probability `p_consecutive` the window is the inference window instead (the 11
  nearest dates, off-centre at the series edges, `models.runtime.date_window`); with
  `p_short` some non-target frames are removed (padding, as for series shorter than 11).
- Space: window centres anywhere the 15 x 15 window fits, or (probability `p_border`)
  anywhere in the raster, with the outside invalid; the target pixel must be valid.
"""

import glob
import json
import os

import numpy as np

from ..runtime.engine import ModalitySpec, date_window, preprocess
from .spec import FRAMES, HALO, MODALITIES, WINDOW, scaled


def ensure_stacks(chip, stack_dir, data_dir=None, progress=None, s1_speckle=None):
    """Paths of the chip's (s2, s1) stacks, preparing them from the shared chips if missing.

    `s1_speckle` = (filter, size) of the Sentinel-1 preparation (default: the preparation's
    own); a stack that exists but was prepared with another filter is an error, never reused.
    """
    from ..sample_data import sample_data_dir
    from ..stack.speckle import DEFAULT_SPECKLE_FILTER, DEFAULT_SPECKLE_SIZE, describe

    method, size = s1_speckle or (DEFAULT_SPECKLE_FILTER, DEFAULT_SPECKLE_SIZE)
    out = os.path.join(stack_dir, chip)
    s2, s1 = os.path.join(out, "s2_stack.tif"), os.path.join(out, "s1_stack.tif")
    if not os.path.isfile(s2):
        from ..stack import prepare_stack

        folder = os.path.join(data_dir or sample_data_dir(), "chips", chip)
        s2_files = sorted(glob.glob(os.path.join(folder, "S2_*.nc")))
        s1_files = sorted(glob.glob(os.path.join(folder, "S1_*.nc")))
        prepare_stack(s2_files, out, s1=s1_files or None, s1_speckle_filter=method, s1_speckle_size=size,
                      progress=progress)
    elif os.path.isfile(s1):
        import rasterio

        with rasterio.open(s1) as data:
            found = data.tags().get("CAMEO_SPECKLE_FILTER", "none")
        if found != describe(method, size):
            raise ValueError(f"{s1} was prepared with speckle filter '{found}', the config asks for "
                             f"'{describe(method, size)}': delete {out} to prepare it again.")
    return s2, (s1 if os.path.isfile(s1) else None)


def speckle_setting(cfg):
    """(filter, size) of the Sentinel-1 preparation a config's models are trained on."""
    return cfg["data"]["s1_speckle_filter"], cfg["data"]["s1_speckle_size"]


class Chip:
    """The arrays of one chip: raw stack values, dates (day numbers) and S1 gaps."""

    def __init__(self, name, s2, days, s1=None, gaps=None):
        self.name, self.s2, self.days, self.s1 = name, s2, np.asarray(days, np.float64), s1
        self.gaps = np.zeros(len(days), np.float32) if gaps is None else np.nan_to_num(np.asarray(gaps, np.float32))

    @classmethod
    def from_stacks(cls, name, s2_path, s1_path=None):
        from ..stack import read_stack

        s2 = read_stack(s2_path)
        days = [d.toordinal() for d in s2.dates]
        s1 = read_stack(s1_path) if s1_path else None
        if s1 is not None and s1.dates != s2.dates:
            raise ValueError(f"{s1_path}: S1 dates differ from the S2 stack's dates")
        return cls(name, s2.values, days, s1.values if s1 else None, s1.s1_gap_days if s1 else None)

    def values(self, modality):
        return self.s2 if modality == "S2" else self.s1


def load_chips(names, stack_dir, s1_speckle=None):
    return [Chip.from_stacks(name, *ensure_stacks(name, stack_dir, s1_speckle=s1_speckle)) for name in names]


def compute_stats(chips):
    """{modality: {"mean": [...], "std": [...]}} over valid pixels of the model-scaled values."""
    stats = {}
    for mod in ("S2", "S1"):
        arrays = [scaled(c.values(mod), mod) for c in chips if c.values(mod) is not None]
        if not arrays:
            continue
        flat = np.concatenate([a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1) for a in arrays], axis=1)
        flat = flat[:, np.all(np.isfinite(flat), axis=0)]
        stats[mod] = {"mean": [float(v) for v in flat.mean(1)], "std": [float(max(v, 1e-3)) for v in flat.std(1)]}
    return stats


def make_spec(modality, stats):
    """The runtime ModalitySpec the export will write for these statistics."""
    m = MODALITIES[modality]
    s = m["scaling"]
    return ModalitySpec(modality=modality, bands=list(m["bands"]), units=m["units"], clip_min=s["clip_min"],
                        clip_max=s["clip_max"], add=s["add"], multiply=s["multiply"],
                        mean=np.asarray(stats[modality]["mean"], np.float32),
                        std=np.asarray(stats[modality]["std"], np.float32), fill=0.0, window=WINDOW,
                        frames=FRAMES, halo=HALO, feature_channels=0, latent_dim=0)


class _Prepared:
    """One chip and modality, padded by the halo: model input, targets, mask."""

    def __init__(self, chip, modality, spec):
        raw = chip.values(modality)
        pad = np.pad(raw, ((0, 0), (0, 0), (HALO, HALO), (HALO, HALO)), constant_values=np.nan)
        self.x = preprocess(pad, spec)                               # [T, C+1, H+14, W+14]
        y = scaled(pad, modality)
        self.mask = self.x[:, -1]                                    # [T, H+14, W+14]
        self.y = np.where(np.isfinite(y), y, 0.0).astype(np.float32)


class WindowSampler:
    """Draws training (or fixed validation) windows from a list of chips."""

    def __init__(self, chips, stats, data_cfg, modalities=("S2",), seed=0):
        self.chips = chips
        self.cfg = data_cfg
        self.modalities = modalities
        self.specs = {m: make_spec(m, stats) for m in modalities}
        self.prepared = [{m: _Prepared(c, m, self.specs[m]) for m in modalities} for c in chips]
        self.rng = np.random.default_rng(seed)

    # -- state for exact resumption
    def get_state(self):
        return json.dumps(self.rng.bit_generator.state)

    def set_state(self, text):
        self.rng.bit_generator.state = json.loads(text)

    def _dates(self, rng, chip, mode=None):
        n = len(chip.days)
        cfg = self.cfg
        r = rng.random()
        if mode == "consecutive" or n < cfg["block"] or r < cfg["p_consecutive"]:
            t = int(rng.integers(n))
            return date_window(t, n, FRAMES)
        for _ in range(10):
            start = int(rng.integers(n - cfg["block"] + 1))
            pick = np.sort(rng.choice(cfg["block"], FRAMES, replace=False)) + start
            if chip.days[pick[-1]] - chip.days[pick[0]] < cfg["max_span_days"]:
                pos = FRAMES // 2 if rng.random() >= cfg["p_offcentre"] else int(rng.integers(FRAMES))
                return [int(i) for i in pick], pos
        t = int(rng.integers(n))
        return date_window(t, n, FRAMES)

    def _one(self, rng, mode=None):
        ci = int(rng.integers(len(self.chips)))
        chip, prep = self.chips[ci], self.prepared[ci]
        first = prep[self.modalities[0]]
        indices, pos = self._dates(rng, chip, mode)
        indices = list(indices)
        if mode is None and rng.random() < self.cfg["p_short"]:
            drop = [k for k in range(FRAMES) if k != pos and indices[k] >= 0]
            for k in rng.choice(drop, int(rng.integers(1, len(drop) + 1)), replace=False):
                indices[int(k)] = -1
        t = indices[pos]
        _, _, hp, wp = first.x.shape
        h, w = hp - 2 * HALO, wp - 2 * HALO
        for _ in range(20):
            if mode is None and rng.random() < self.cfg["p_border"]:
                y, x = int(rng.integers(h)), int(rng.integers(w))
            else:
                y, x = int(rng.integers(HALO, h - HALO)), int(rng.integers(HALO, w - HALO))
            if first.mask[t, y + HALO, x + HALO] > 0:
                break
        exists = np.asarray([1.0 if i >= 0 else 0.0 for i in indices], np.float32)
        offsets = np.asarray([chip.days[i] - chip.days[t] if i >= 0 else 0.0 for i in indices], np.float32)
        sample = {"exists": exists, "offsets": offsets, "target": pos, "gap": chip.gaps[t]}
        safe = [i if i >= 0 else t for i in indices]
        for m in self.modalities:
            p = prep[m]
            sl = (safe, slice(None), slice(y, y + WINDOW), slice(x, x + WINDOW))
            xw = p.x[sl] * exists[:, None, None, None]
            sample[m] = {"x": xw, "y": p.y[sl], "mask": p.mask[safe, y:y + WINDOW, x:x + WINDOW] * exists[:, None, None]}
            if m == "S1":
                sample["s1_present"] = float(p.mask[t, y + HALO, x + HALO])
        return sample

    def batch(self, size, rng=None, mode=None):
        rng = rng or self.rng
        samples = [self._one(rng, mode) for _ in range(size)]
        out = {"exists": np.stack([s["exists"] for s in samples]), "offsets": np.stack([s["offsets"] for s in samples]),
               "target": np.asarray([s["target"] for s in samples], np.int64),
               "gap": np.asarray([s["gap"] for s in samples], np.float32)}
        for m in self.modalities:
            out[m] = {k: np.stack([s[m][k] for s in samples]) for k in ("x", "y", "mask")}
        if "S1" in self.modalities:
            out["s1_present"] = np.asarray([s["s1_present"] for s in samples], np.float32)
        return out

    def fixed(self, n, seed=1234, batch_size=64):
        """A reproducible validation set of inference windows (the 11 nearest dates)."""
        rng = np.random.default_rng(seed)
        return [self.batch(min(batch_size, n - i), rng, mode="consecutive") for i in range(0, n, batch_size)]


def to_torch(batch, device="cpu"):
    import torch

    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return torch.from_numpy(np.ascontiguousarray(v)).to(device)
    return {k: conv(v) for k, v in batch.items()}
