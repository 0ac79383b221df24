"""The bundled GPP model: light-use efficiency set by the embeddings, radiation from the sun.

    GPP(day) = Ra(day, latitude) x efficiency(90-day embedding window),   efficiency >= 0

Ra is the day's top-of-atmosphere radiation (models.gpp.sun, MJ m-2 d-1), so GPP follows
the sun by construction and is never negative (the efficiency ends in a Softplus). The
efficiency is a function (linear in the bundled model, an MLP if `hidden` > 0) of the
standardised embedding averaged over the last `recent_bins` of 9 consecutive 10-day bins.
The exported graph (`BinnedLUE`) takes the 9 bin means, which the runtime computes exactly
from the observations (models.gpp.series.bin_weights), not the 90 daily values. The graph also outputs the area-of-applicability features: the
standardised window averaged into 3 bins of 30 days (21 values), see models.gpp.aoa.

Training targets mix resolutions: towers with daily GPP give a loss per day, towers with
monthly GPP only a loss on the month's mean of the daily predictions (every day of the
month must have a complete window). Each site's mean error (in units of the method's GPP
std 4.386) counts equally, so a monthly tower weighs as much as a daily one. The bundled
model's error is squared: GPP maps are read as means (monthly and annual sums), and the
median that an L1 loss estimates is biased low wherever GPP is skewed.
"""

import json

import numpy as np
import torch
from torch import nn

from .gpp_small import GPP_STD
from .loop import seed_everything

# Chosen by leave-one-site-out over the five towers (models/README.md): a linear efficiency of
# the last 10-day bin generalised to unseen sites better than MLPs or more bins (the canopy of
# the last days sets today's efficiency; older bins let the model memorise sites). A squared
# loss generalised better than L1 or Huber, and 4000 steps make the fit independent of the
# seed (at 1500 steps the held-out evergreen site's bias still moved by 0.5 between seeds).
LUE = {"kind": "lue", "bins": 9, "recent_bins": 1, "aoa_bins": 3, "hidden": 0, "lr": 3e-3, "weight_decay": 1e-3,
       "steps": 4000, "warmup_steps": 100, "grad_clip": 1.0, "batch_size": 256, "loss": "l2"}
EFFICIENCY_SCALE = 0.1  # g C per MJ: typical efficiencies (0-0.5) come out of the Softplus near 1


def binning_matrix(window_days, bins, mean, std):
    """(W, b): flat window [window_days * F] -> standardised bin means [bins * F]."""
    features = len(mean)
    per_bin = window_days // bins
    w = np.zeros((window_days * features, bins * features), np.float32)
    for d in range(window_days):
        for f in range(features):
            w[d * features + f, (d // per_bin) * features + f] = 1.0 / (per_bin * std[f])
    b = np.tile(-np.asarray(mean, np.float32) / np.asarray(std, np.float32), bins)
    return w, b.astype(np.float32)


class LightUseEfficiency(nn.Module):
    """(window [B, days, F], radiation [B]) -> (GPP [B], AOA features [B, aoa_bins * F])."""

    def __init__(self, mean, std, window_days=90, bins=9, aoa_bins=3, hidden=32, recent_bins=None):
        super().__init__()
        if window_days % bins or bins % aoa_bins:
            raise ValueError("window_days must be a multiple of bins, bins of aoa_bins")
        features = len(mean)
        w, b = binning_matrix(window_days, bins, mean, std)
        self.register_buffer("bin_weight", torch.from_numpy(w))
        self.register_buffer("bin_bias", torch.from_numpy(b))
        merge = np.zeros((bins * features, aoa_bins * features), np.float32)
        per = bins // aoa_bins
        for k in range(bins):
            for f in range(features):
                merge[k * features + f, (k // per) * features + f] = 1.0 / per
        self.register_buffer("aoa_merge", torch.from_numpy(merge))
        used = (recent_bins or bins) * features
        self.first_used = bins * features - used
        self.mlp = (nn.Sequential(nn.Linear(used, hidden), nn.GELU(), nn.Linear(hidden, 1)) if hidden
                    else nn.Linear(used, 1))
        self.spec = {"window_days": window_days, "bins": bins, "aoa_bins": aoa_bins, "hidden": hidden,
                     "recent_bins": recent_bins or bins,
                     "mean": [float(v) for v in mean], "std": [float(v) for v in std]}

    def binned(self, x):
        return x.flatten(1) @ self.bin_weight + self.bin_bias

    def efficiency_of_bins(self, binned):
        return EFFICIENCY_SCALE * nn.functional.softplus(self.mlp(binned[:, self.first_used:])).squeeze(-1)

    def forward(self, x, radiation):
        binned = self.binned(x)
        return radiation * self.efficiency_of_bins(binned), binned @ self.aoa_merge


def _tensor(a):
    return torch.from_numpy(np.ascontiguousarray(a, np.float32))


def _batch(part, rng, size):
    """Indices of one training batch of a site part, and (monthly) the months they average into."""
    if part["resolution"] == "daily":
        return torch.from_numpy(rng.integers(0, len(part["y"]), size)), None
    months = rng.choice(len(part["y"]), min(len(part["y"]), max(1, size // 30)), replace=False)
    rows = [np.flatnonzero(part["month"] == m) for m in months]
    which = np.concatenate([np.full(len(r), k) for k, r in enumerate(rows)])
    return torch.from_numpy(np.concatenate(rows)), (torch.from_numpy(months), torch.from_numpy(which))


def site_loss(gpp, part, months, kind):
    """Mean absolute ('l1') or squared ('l2') error in GPP std units: per day, or per month on
    the mean of its daily predictions."""
    if months is None:
        error = (gpp - part["y_batch"]) / GPP_STD
    else:
        chosen, which = months
        mean = torch.zeros(len(chosen)).index_add(0, which, gpp) / torch.bincount(which).float()
        error = (mean - part["y"][chosen]) / GPP_STD
    return error.square().mean() if kind == "l2" else error.abs().mean()


def torch_parts(parts):
    out = []
    for p in parts:
        q = {"x": _tensor(p["x"]), "ra": _tensor(p["ra"]), "y": _tensor(p["y"]), "resolution": p["resolution"]}
        if p["resolution"] == "monthly":
            q["month"] = np.asarray(p["month"], np.int64)
        out.append(q)
    return out


def fit_on_parts(model, gpp_of, parts, spec, seed=42, threads=1):
    """Train `model` (GPP = gpp_of(model, x, ra)) on site parts; each site's loss counts equally.

    parts: dicts with x [N, days, F], ra [N], y (per day, or per month with `month` [N] the
    month index of each window's day), resolution 'daily' or 'monthly'."""
    torch.set_num_threads(threads)
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    tparts = torch_parts(parts)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=spec["weight_decay"])
    model.train()
    for step in range(spec["steps"]):
        for group in opt.param_groups:
            group["lr"] = spec["lr"] * min(1.0, (step + 1) / max(1, spec["warmup_steps"]))
        losses = []
        for part in tparts:
            rows, months = _batch(part, rng, spec["batch_size"])
            if months is None:
                part["y_batch"] = part["y"][rows]
            losses.append(site_loss(gpp_of(model, part["x"][rows], part["ra"][rows]), part, months,
                                    spec.get("loss", "l1")))
        loss = torch.stack(losses).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, spec["grad_clip"])
        opt.step()
    model.eval()
    return model


def fit_lue(parts, spec=LUE, seed=42, threads=1):
    """The bundled recipe: input standardisation from the training windows, then fit_on_parts."""
    seed_everything(seed)
    flat = np.concatenate([p["x"].reshape(-1, p["x"].shape[-1]) for p in parts])
    model = LightUseEfficiency(flat.mean(0), flat.std(0) + 1e-6, parts[0]["x"].shape[1], spec["bins"],
                               spec["aoa_bins"], spec["hidden"], spec.get("recent_bins"))
    return fit_on_parts(model, lambda m, x, ra: m(x, ra)[0], parts, spec, seed, threads)


def predict_lue(model, x, ra, batch=4096):
    """(GPP [N], AOA features [N, K]) as numpy."""
    gpp, feats = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            g, f = model(_tensor(x[i:i + batch]), _tensor(ra[i:i + batch]))
            gpp.append(g.numpy())
            feats.append(f.numpy())
    if not gpp:
        return np.zeros(0, np.float32), np.zeros((0, model.aoa_merge.shape[1]), np.float32)
    return np.concatenate(gpp), np.concatenate(feats)


def macs_per_window(spec, inputs=7, window_days=90):
    """Multiply-adds of one pixel-date in the exported graph (on bin means); elementwise ops ignored.
    The runtime's bin means cost bins x inputs x (stack dates) more (models.gpp.series)."""
    used = spec["recent_bins"] * inputs
    return used * (spec["hidden"] or 1) + (spec["hidden"] or 0)


class BinnedLUE(nn.Module):
    """The exported graph: the same function as a LightUseEfficiency, on the window's 10-day
    bin means (the runtime computes them exactly from the observations, models.gpp.series),
    with the standardisation and the AOA bin merge folded into two small GEMMs."""

    def __init__(self, lue):
        super().__init__()
        spec = lue.spec
        bins, features = spec["bins"], len(spec["mean"])
        mean = torch.tensor(spec["mean"], dtype=torch.float32).repeat(bins)      # per flattened bin value
        std = torch.tensor(spec["std"], dtype=torch.float32).repeat(bins)
        first = lue.mlp if isinstance(lue.mlp, nn.Linear) else lue.mlp[0]
        with torch.no_grad():
            weight = torch.zeros(first.out_features, bins * features)
            weight[:, lue.first_used:] = first.weight
            self.first = nn.Linear(bins * features, first.out_features)
            self.first.weight.copy_(weight / std)
            self.first.bias.copy_(first.bias - (weight / std) @ mean)
            merge = lue.aoa_merge                                                 # [bins F, aoa F]
            self.aoa = nn.Linear(bins * features, merge.shape[1])
            self.aoa.weight.copy_((merge / std[:, None]).T)
            self.aoa.bias.copy_(-(mean / std) @ merge)
            # the input is feature-major ([N, F, bins], what the runtime's products give without
            # a transpose): reorder the columns from bin-major to feature-major
            order = torch.tensor([b * features + f for f in range(features) for b in range(bins)])
            self.first.weight.copy_(self.first.weight[:, order])
            self.aoa.weight.copy_(self.aoa.weight[:, order])
        self.rest = nn.Identity() if isinstance(lue.mlp, nn.Linear) else lue.mlp[1:]

    def forward(self, bins, radiation):
        flat = bins.flatten(1)
        efficiency = EFFICIENCY_SCALE * nn.functional.softplus(self.rest(self.first(flat))).squeeze(-1)
        return radiation * efficiency, self.aoa(flat)


def used_bins(binned, bins, aoa_weights=None):
    """The bins whose means the outputs depend on: those with a non-zero weight in the GPP
    branch, or in an AOA feature of non-zero AOA weight (`aoa_weights`, default: all). The
    runtime computes only these bin means and feeds zeros for the others, which is exact."""
    with torch.no_grad():
        first = binned.first.weight.abs().sum(0)                                    # [E * bins]
        aoa = binned.aoa.weight.abs()                                               # [K, E * bins]
        if aoa_weights is not None:
            aoa = aoa[torch.as_tensor(aoa_weights) > 0]
        column_used = (first > 0) | (aoa.sum(0) > 0)
    per_bin = column_used.reshape(-1, bins).any(0)                                  # feature-major columns
    return [int(b) for b in torch.nonzero(per_bin).flatten()]


def export_lue_onnx(model, path, inputs, metadata, opset=17):
    """`bins` [N, E, bins], `radiation` [N] -> `gpp` [N], `aoa_features` [N, K]; metadata inside."""
    import onnx

    model.eval()
    days, bins = model.spec["window_days"], model.spec["bins"]
    binned = BinnedLUE(model).eval()
    with torch.no_grad():
        torch.onnx.export(binned, (torch.ones(2, len(inputs), bins), torch.ones(2)), path,
                          dynamo=False, opset_version=opset, input_names=["bins", "radiation"],
                          output_names=["gpp", "aoa_features"],
                          dynamic_axes={"bins": {0: "batch"}, "radiation": {0: "batch"},
                                        "gpp": {0: "batch"}, "aoa_features": {0: "batch"}},
                          do_constant_folding=True)
    m = onnx.load(path)
    del m.metadata_props[:]
    aoa_weights = json.loads(metadata["cameo_aoa_weights"]) if "cameo_aoa_weights" in metadata else None
    meta = {"cameo_metadata_format": "2", "cameo_role": "gpp", "cameo_gpp_form": "light_use_efficiency",
            "cameo_window_days": str(days), "cameo_bins": str(bins), "cameo_inputs": json.dumps(list(inputs)),
            "cameo_used_bins": json.dumps(used_bins(binned, bins, aoa_weights)),
            "cameo_units": "g C m-2 d-1", "cameo_radiation": "top-of-atmosphere, MJ m-2 d-1 (FAO-56 eq. 21)",
            "cameo_input_mean": json.dumps(model.spec["mean"]), "cameo_input_std": json.dumps(model.spec["std"])}
    meta.update({k: str(v) for k, v in metadata.items()})
    for key, value in sorted(meta.items()):
        entry = m.metadata_props.add()
        entry.key, entry.value = key, value
    m.producer_name = "cameo-models-train"
    onnx.save(m, path)
    return path


def aoa_importance(model, x, ra, seed=0):
    """Grouped permutation importance of each AOA feature (aoa bin k, embedding feature f):
    mean |change of GPP| when that feature's days of bin k are shuffled across samples."""
    rng = np.random.default_rng(seed)
    base, _ = predict_lue(model, x, ra)
    days, features = x.shape[1], x.shape[2]
    aoa_bins = model.spec["aoa_bins"]
    per = days // aoa_bins
    importance = np.zeros(aoa_bins * features)
    for k in range(aoa_bins):
        for f in range(features):
            shuffled = x.copy()
            shuffled[:, k * per:(k + 1) * per, f] = x[rng.permutation(len(x)), k * per:(k + 1) * per, f]
            importance[k * features + f] = np.abs(predict_lue(model, shuffled, ra)[0] - base).mean()
    return importance
