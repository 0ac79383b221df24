"""The context-aware loss of the method (../shared/docs/method.md, "Context-aware loss").

Weights over a K x S x S window are the product of a spatial factor by Chebyshev ring
distance d from the centre (w_s(0) = 1, w_s(d) = 0.01 * 0.1^(d-1)) and a temporal factor
by frame offset k from the target frame (w_t(k) = 0.1^|k|); the centre entry gets its own
weight c; the weights are normalised to sum to 1. For an off-centre target (edge dates)
the temporal factor is centred on the target frame. With `context=False` the loss is
centre-only (all weight on the central pixel of the target frame), for the comparison.

Terms, each normalised per window over its valid pixels:
- masked weighted MAE over bands;
- weighted spectral angle (radians) between predicted and true band vectors;
- 1 - SSIM per frame (Gaussian window 7, sigma 1.5, data range 1, unpadded), where
  invalid pixels of the prediction are replaced by the truth (they cannot be scored),
  averaged over the frames that exist.
"""

import torch
from torch.nn import functional as F


def spatial_weights(window=15):
    c = window // 2
    idx = torch.arange(window, dtype=torch.float64)
    d = torch.maximum((idx[:, None] - c).abs(), (idx[None, :] - c).abs())
    return torch.where(d == 0, torch.ones_like(d), 0.01 * 0.1 ** (d - 1))


def context_weights(window=15, frames=11, centre_weight=1.0, target_index=None, context=True):
    """Normalised [frames, window, window] float64 weights for one target position."""
    t = frames // 2 if target_index is None else int(target_index)
    c = window // 2
    if not context:
        w = torch.zeros(frames, window, window, dtype=torch.float64)
        w[t, c, c] = 1.0
        return w
    k = (torch.arange(frames, dtype=torch.float64) - t).abs()
    w = (0.1 ** k)[:, None, None] * spatial_weights(window)[None]
    w[t, c, c] = centre_weight
    return w / w.sum()


def batch_weights(target_index, frames, window, centre_weight, context=True, device=None):
    """[B, K, S, S] float32 weights for a batch of target positions."""
    table = torch.stack([context_weights(window, frames, centre_weight, t, context) for t in range(frames)])
    return table.to(torch.float32).to(device)[target_index]


def _normalised(values, weights):
    """Per-window weighted mean of `values` [B, K, S, S] with weights [B, K, S, S]."""
    total = weights.flatten(1).sum(1)
    per_window = (values * weights).flatten(1).sum(1) / total.clamp_min(1e-12)
    keep = total > 0
    if not bool(keep.any()):
        return values.sum() * 0.0
    return per_window[keep].mean()


def masked_weighted_mae(pred, true, mask, weights):
    """pred/true [B,K,C,S,S], mask [B,K,S,S] (1 valid), weights [B,K,S,S]."""
    err = (pred - true).abs().mean(dim=2)
    err = torch.where(mask > 0, err, torch.zeros_like(err))
    return _normalised(err, weights * mask)


def spectral_angle(pred, true, eps=1e-7):
    """Angle (radians) between band vectors along dim 2: [B,K,C,S,S] -> [B,K,S,S]."""
    dot = (pred * true).sum(2)
    norm = pred.norm(dim=2) * true.norm(dim=2)
    cos = dot / (norm + eps)
    return torch.arccos(cos.clamp(-1 + eps, 1 - eps))


def weighted_sam(pred, true, mask, weights):
    true = torch.where(mask.unsqueeze(2) > 0, true, torch.ones_like(true))
    pred = torch.where(mask.unsqueeze(2) > 0, pred, torch.ones_like(pred))
    return _normalised(spectral_angle(pred, true), weights * mask)


def gaussian_kernel(size=7, sigma=1.5):
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(a, b, data_range=1.0, size=7, sigma=1.5):
    """Mean SSIM per image: a/b [N, C, S, S] -> [N] (unpadded Gaussian window)."""
    c = a.shape[1]
    k = gaussian_kernel(size, sigma).to(a.device, a.dtype)[None, None].expand(c, 1, size, size)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a = F.conv2d(a, k, groups=c)
    mu_b = F.conv2d(b, k, groups=c)
    saa = F.conv2d(a * a, k, groups=c) - mu_a ** 2
    sbb = F.conv2d(b * b, k, groups=c) - mu_b ** 2
    sab = F.conv2d(a * b, k, groups=c) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return s.flatten(1).mean(1)


def ssim_loss(pred, true, mask, exists):
    """1 - SSIM over the existing frames. pred/true [B,K,C,S,S], mask [B,K,S,S], exists [B,K]."""
    pred = torch.where(mask.unsqueeze(2) > 0, pred, true)
    s = ssim(pred.flatten(0, 1), true.flatten(0, 1)).reshape(exists.shape)
    return ((1 - s) * exists).sum() / exists.sum().clamp_min(1)


class ContextLoss:
    """The per-modality mix: mae * MAE + sam * SAM + ssim * (1 - SSIM)."""

    def __init__(self, mae=1.0, sam=0.0, ssim=0.0, centre_weight=1.0, context=True, window=15, frames=11):
        self.mix = {"mae": mae, "sam": sam, "ssim": ssim}
        self.centre_weight, self.context = centre_weight, context
        self.window, self.frames = window, frames

    def __call__(self, pred, true, mask, exists, target_index):
        w = batch_weights(target_index, self.frames, self.window, self.centre_weight, self.context, pred.device)
        mask = mask * exists[..., None, None]
        terms = {"mae": masked_weighted_mae(pred, true, mask, w)}
        if self.mix["sam"]:
            terms["sam"] = weighted_sam(pred, true, mask, w)
        if self.mix["ssim"]:
            terms["ssim"] = ssim_loss(pred, true, mask, exists)
        total = sum(self.mix[name] * value for name, value in terms.items())
        return total, {name: float(value.detach()) for name, value in terms.items()}
