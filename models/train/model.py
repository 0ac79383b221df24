"""CAMEO networks, built so that dense inference over a tile is exact.

Modality autoencoder (one per sensor):
- `FrameEncoder`: per-frame spatial encoder. Unpadded ("valid") convolutions and
  stride-1 pooling only, receptive field exactly 15 x 15: a 15 x 15 frame gives one
  feature vector, an (H+14) x (W+14) tile gives the H x W grid of the same vectors.
  1x1 stem -> multiscale block (3x3 and 7x7 paths, the 3x3 output cropped to the 7x7
  one, 1x1 fusion) -> CBAM with its channel attention pooled over 3x3 (avg and max
  filters, stride 1) and a 3x3 spatial attention, residual -> two 3x3 convolutions ->
  1x1 to the frame token z. It also emits the keys and values of every temporal layer
  (they depend on the frame only, so they are computed once per frame and shared by
  all target dates) and the window validity (1 if any pixel of the 15 x 15 window is
  valid).
- `TemporalEncoder`: the target frame's token is the query; it attends over the
  (up to) 11 frames of its own window - never across pixels or samples. Time enters
  as a learned function of each frame's day offset relative to the target: an
  attention bias per head and a value term, so keys/values stay per-frame. A learned
  "null" slot keeps the softmax defined when no frame is valid. Output: the modality
  latent (Softplus).
- `WindowDecoder`: latent + day offsets -> the whole K x C x 15 x 15 window (training
  only).

`Fusion`: S2 latent + S1 latent (+ gap embedding, S1-present flag) as two tokens, a
small pre-norm transformer over the two tokens of one pixel-date, mean pool over the
present tokens, LayerNorm, 7 outputs with Softplus.

The GPP models live elsewhere: the bundled light-use-efficiency model in `gpp_lue.py`,
the regressors it is compared with (the paper's transformer, a binned MLP) in
`gpp_small.py`.

Layouts: spatial modules work on NCHW; token modules work "token-last" ([..., C]) with
any leading dimensions, so the per-window path ([B, ...]) and the dense path
([N, H, W, ...]) run the very same operations.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

N_TIME_FEATURES = 6


def time_features(days):
    """Fixed features of a day offset (any shape) -> [..., N_TIME_FEATURES]."""
    a = days.abs()
    return torch.stack([
        days / 100.0,
        torch.sign(days) * torch.log1p(a) / 6.0,
        torch.exp(-a),
        torch.exp(-a / 8.0),
        torch.exp(-a / 32.0),
        torch.exp(-a / 128.0),
    ], dim=-1)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor (per pixel: dense-safe)."""

    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def _crop(x, n):
    return x[..., n:x.shape[-2] - n, n:x.shape[-1] - n] if n else x


class FrameEncoder(nn.Module):
    """[N, bands+1, H+14, W+14] -> [N, token + 2*layers*token + 1, H, W]."""

    WINDOW = 15

    def __init__(self, bands, width=32, token_dim=32, temporal_layers=2, ca_reduction=4):
        super().__init__()
        self.bands = bands
        self.token_dim = token_dim
        self.temporal_layers = temporal_layers
        self.stem = nn.Conv2d(bands + 1, width, 1)
        self.path3 = nn.Conv2d(width, width, 3)
        self.path7 = nn.Conv2d(width, width, 7)
        self.fuse = nn.Conv2d(2 * width, width, 1)
        hidden = max(width // ca_reduction, 2)
        self.ca_mlp = nn.Sequential(nn.Conv2d(width, hidden, 1), nn.GELU(), nn.Conv2d(hidden, width, 1))
        self.sa = nn.Conv2d(2, 1, 3)
        self.conv1 = nn.Conv2d(width, width, 3)
        self.conv2 = nn.Conv2d(width, width, 3)
        self.out = nn.Conv2d(width, token_dim, 1)
        self.kv_norm = ChannelLayerNorm(token_dim)
        self.kv = nn.Conv2d(token_dim, 2 * temporal_layers * token_dim, 1)

    @property
    def feature_channels(self):
        return self.token_dim * (1 + 2 * self.temporal_layers) + 1

    def forward(self, x):
        h = F.gelu(self.stem(x))                                    # S
        a = _crop(self.path3(h), 2)                                 # S-6
        b = self.path7(h)                                           # S-6
        f = F.gelu(self.fuse(torch.cat([a, b], dim=1)))             # S-6
        # CBAM, dense-exact: channel attention from 3x3 avg/max filters (stride 1) ...
        ca = torch.sigmoid(self.ca_mlp(F.avg_pool2d(f, 3, stride=1)) + self.ca_mlp(F.max_pool2d(f, 3, stride=1)))
        g = _crop(f, 1) * ca                                        # S-8
        # ... then a 3x3 spatial attention over channel mean and max
        s = torch.cat([g.mean(dim=1, keepdim=True), g.amax(dim=1, keepdim=True)], dim=1)
        g = _crop(g, 1) * torch.sigmoid(self.sa(s))                 # S-10
        h = _crop(f, 2) + g                                         # residual
        h = _crop(h, 1) + F.gelu(self.conv1(h))                     # S-12
        h = _crop(h, 1) + F.gelu(self.conv2(h))                     # S-14
        z = self.out(h)
        kv = self.kv(self.kv_norm(z))
        window_valid = F.max_pool2d(x[:, -1:], self.WINDOW, stride=1)
        return torch.cat([z, kv, window_valid], dim=1)


class FeedForward(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class TemporalEncoder(nn.Module):
    """Target-query attention over the frames of one window (token-last layout)."""

    def __init__(self, token_dim=32, heads=4, layers=2, ffn=64, latent=9):
        super().__init__()
        assert token_dim % heads == 0
        self.d, self.heads, self.layers = token_dim, heads, layers
        self.dh = token_dim // heads
        self.time_mlp = nn.Sequential(
            nn.Linear(N_TIME_FEATURES, 32), nn.GELU(), nn.Linear(32, layers * (heads + token_dim)))
        self.null_k = nn.Parameter(torch.zeros(layers, token_dim))
        self.null_v = nn.Parameter(torch.zeros(layers, token_dim))
        self.null_bias = nn.Parameter(torch.zeros(layers, heads))
        self.q_norm = nn.ModuleList(nn.LayerNorm(token_dim) for _ in range(layers))
        self.wq = nn.ModuleList(nn.Linear(token_dim, token_dim) for _ in range(layers))
        self.wo = nn.ModuleList(nn.Linear(token_dim, token_dim) for _ in range(layers))
        self.ffn = nn.ModuleList(FeedForward(token_dim, ffn) for _ in range(layers))
        self.out_norm = nn.LayerNorm(token_dim)
        self.out1 = nn.Linear(token_dim, token_dim)
        self.out2 = nn.Linear(token_dim, latent)

    def head_sum(self, device, dtype):
        """[d, heads] 0/1 matrix summing the channels of each head (GEMM-friendly for ONNX)."""
        idx = torch.arange(self.d, device=device) // self.dh
        return (idx[:, None] == torch.arange(self.heads, device=device)[None]).to(dtype)

    def forward(self, query, feats, exists, time):
        """Group layout, at most 4-D so ONNX Runtime runs plain GEMMs and elementwise ops:
        query [G, P, F], feats [G, P, K, F], exists [G, 1, K], time [G, 1, K, L*(heads+d)]
        (time = time_mlp(time_features(offsets))). Per window: G = batch, P = 1; dense:
        G = dates, P = pixels. -> latent [G, P, latent]."""
        d, nh = self.d, self.heads
        hs = self.head_sum(query.device, query.dtype)                  # [d, nh]
        h = query[..., :d]
        valid = feats[..., -1] * exists                                # [G, P, K]
        mask = ((valid - 1.0) * 1e9).unsqueeze(-1)                     # [G, P, K, 1]
        scale = 1.0 / math.sqrt(self.dh)
        for layer in range(self.layers):
            base = d + 2 * d * layer
            k = feats[..., base:base + d]                              # [G, P, K, d]
            v = feats[..., base + d:base + 2 * d]
            t0 = layer * (nh + d)
            bias = time[..., t0:t0 + nh]                               # [G, 1, K, nh]
            u = time[..., t0 + nh:t0 + nh + d]                         # [G, 1, K, d]
            q = self.wq[layer](self.q_norm[layer](h))                  # [G, P, d]
            logits = torch.matmul(q.unsqueeze(-2) * k, hs) * scale + bias + mask          # [G, P, K, nh]
            null = torch.matmul(q * self.null_k[layer], hs) * scale + self.null_bias[layer]  # [G, P, nh]
            logits = torch.cat([logits, null.unsqueeze(-2)], dim=-2)   # [G, P, K+1, nh]
            e = torch.exp(logits - logits.amax(dim=-2, keepdim=True))
            attn = e / e.sum(dim=-2, keepdim=True)
            a = torch.matmul(attn, hs.t())                             # [G, P, K+1, d]
            out = (a[..., :-1, :] * (v + u)).sum(-2) + a[..., -1, :] * self.null_v[layer]
            h = h + self.wo[layer](out)
            h = h + self.ffn[layer](h)
        return F.softplus(self.out2(F.gelu(self.out1(self.out_norm(h)))))


class WindowDecoder(nn.Module):
    """latent [B, L] + offsets [B, K] -> reconstruction [B, K, C, 15, 15] (training only)."""

    def __init__(self, latent, bands, width=32, hidden=128, window=15):
        super().__init__()
        assert window % 3 == 0
        self.width, self.side = width, window // 3
        self.mlp = nn.Sequential(
            nn.Linear(latent + N_TIME_FEATURES, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU())
        self.to_map = nn.Linear(hidden, width * self.side * self.side)
        self.to_mean = nn.Linear(hidden, bands)
        self.up = nn.ConvTranspose2d(width, width, 3, stride=3)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, bands, 1)

    def forward(self, latent, offsets):
        b, k = offsets.shape
        x = torch.cat([latent.unsqueeze(1).expand(b, k, latent.shape[-1]), time_features(offsets)], dim=-1)
        hid = self.mlp(x)                                            # [B, K, hidden]
        m = self.to_map(hid).reshape(b * k, self.width, self.side, self.side)
        m = F.gelu(self.up(m))
        m = m + F.gelu(self.conv1(m))
        out = self.conv2(m).reshape(b, k, -1, m.shape[-2], m.shape[-1])
        return out + self.to_mean(hid)[..., None, None]


class ModalityAutoencoder(nn.Module):
    def __init__(self, bands, cfg):
        super().__init__()
        self.bands = bands
        self.frame = FrameEncoder(bands, cfg["width"], cfg["token_dim"], cfg["temporal_layers"], cfg["ca_reduction"])
        self.temporal = TemporalEncoder(cfg["token_dim"], cfg["heads"], cfg["temporal_layers"], cfg["ffn"], cfg["latent"])
        self.decoder = WindowDecoder(cfg["latent"], bands, cfg["decoder_width"], cfg["decoder_hidden"])

    def frame_features(self, x):
        """x [B, K, bands+1, 15, 15] -> [B, K, F] (per-window path)."""
        b, k = x.shape[:2]
        return self.frame(x.flatten(0, 1)).reshape(b, k, -1)

    def encode(self, x, exists, offsets, target):
        """Per-window embedding: x [B,K,bands+1,15,15], exists/offsets [B,K], target [B] int."""
        feats = self.frame_features(x)
        onehot = (torch.arange(feats.shape[1], device=x.device) == target.unsqueeze(-1)).to(feats.dtype)
        query = (feats * onehot.unsqueeze(-1)).sum(1)
        time = self.temporal.time_mlp(time_features(offsets))
        z = self.temporal(query.unsqueeze(1), feats.unsqueeze(1), exists.unsqueeze(1), time.unsqueeze(1))
        return z[:, 0]

    def forward(self, x, exists, offsets, target):
        latent = self.encode(x, exists, offsets, target)
        return latent, self.decoder(latent, offsets)


class SelfAttentionBlock(nn.Module):
    """Pre-norm transformer block over the S tokens of [..., S, W], key mask [..., S].

    Written with per-head sums as GEMMs against a 0/1 head matrix and a hand softmax,
    so the exported graph has plain MatMul/elementwise ops (fast in ONNX Runtime)."""

    def __init__(self, width, heads, ffn):
        super().__init__()
        self.heads, self.dh, self.width = heads, width // heads, width
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ffn = FeedForward(width, ffn)

    def forward(self, x, key_valid):
        w = self.width
        idx = torch.arange(w, device=x.device) // self.dh
        hs = (idx[:, None] == torch.arange(self.heads, device=x.device)[None]).to(x.dtype)   # [W, nh]
        qkv = self.qkv(self.norm(x))
        q, k, v = qkv[..., :w], qkv[..., w:2 * w], qkv[..., 2 * w:]                            # [..., S, W]
        logits = torch.matmul(q.unsqueeze(-2) * k.unsqueeze(-3), hs) / math.sqrt(self.dh)      # [..., Sq, Sk, nh]
        logits = logits + ((key_valid - 1.0) * 1e9).unsqueeze(-2).unsqueeze(-1)
        e = torch.exp(logits - logits.amax(dim=-2, keepdim=True))
        attn = torch.matmul(e / e.sum(dim=-2, keepdim=True), hs.t())                           # [..., Sq, Sk, W]
        out = (attn * v.unsqueeze(-3)).sum(-2)                                                 # [..., Sq, W]
        x = x + self.proj(out)
        return x + self.ffn(x)


class Fusion(nn.Module):
    """S2 latent + S1 latent (+ gap, S1-present flag) -> 7 non-negative values."""

    def __init__(self, s2_latent=9, s1_latent=2, width=32, heads=4, layers=2, ffn=64, embedding=7):
        super().__init__()
        self.p2 = nn.Linear(s2_latent, width)
        self.p1 = nn.Linear(s1_latent, width)
        self.modality = nn.Parameter(torch.zeros(2, width))
        nn.init.normal_(self.modality, std=0.02)
        self.gap_mlp = nn.Sequential(nn.Linear(N_TIME_FEATURES, 32), nn.GELU(), nn.Linear(32, width))
        self.blocks = nn.ModuleList(SelfAttentionBlock(width, heads, ffn) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, embedding)

    def forward(self, z2, z1, gap, present):
        """Token-last: z2 [..., 9], z1 [..., 2], gap [...] days, present [...] in {0, 1}."""
        p = present.unsqueeze(-1)
        t2 = self.p2(z2) + self.modality[0]
        t1 = self.p1(z1 * p) + self.modality[1] + self.gap_mlp(time_features(gap * present))
        x = torch.stack([t2, t1], dim=-2)
        key_valid = torch.stack([torch.ones_like(present), present], dim=-1)
        for block in self.blocks:
            x = block(x, key_valid)
        pooled = (x[..., 0, :] + p * x[..., 1, :]) / (1.0 + p)
        return F.softplus(self.out(self.norm(pooled)))


class FusionModel(nn.Module):
    """Fusion plus the training-only heads that feed the frozen modality decoders."""

    def __init__(self, cfg, s2_cfg, s1_cfg):
        super().__init__()
        e, hid = cfg["embedding"], cfg["head_hidden"]
        self.fusion = Fusion(s2_cfg["latent"], s1_cfg["latent"], cfg["width"], cfg["heads"], cfg["layers"], cfg["ffn"], e)
        self.to_s2 = nn.Sequential(nn.Linear(e, hid), nn.GELU(), nn.Linear(hid, s2_cfg["latent"]), nn.Softplus())
        self.to_s1 = nn.Sequential(nn.Linear(e, hid), nn.GELU(), nn.Linear(hid, s1_cfg["latent"]), nn.Softplus())

    def forward(self, z2, z1, gap, present):
        """-> (embedding, S2 decoder input, S1 decoder input)."""
        e = self.fusion(z2, z1, gap, present)
        return e, self.to_s2(e), self.to_s1(e)


class DenseFrame(nn.Module):
    """frames [N, bands+1, H+14, W+14] -> features [N, F, H, W]."""

    def __init__(self, ae):
        super().__init__()
        self.frame = ae.frame

    def forward(self, frames):
        return self.frame(frames)


def _linear_cm(layer, x):
    """A Linear layer on channel-major x [in, P] -> [out, P] (one GEMM with its bias)."""
    return torch.addmm(layer.bias.unsqueeze(1), layer.weight, x)


def _layer_norm_cm(norm, x):
    """LayerNorm over the channels of channel-major x [C, P] or tokens [S, C, P]."""
    centred = x - x.mean(-2, keepdim=True)
    scaled = centred / torch.sqrt((centred * centred).mean(-2, keepdim=True) + norm.eps)
    return scaled * norm.weight.unsqueeze(1) + norm.bias.unsqueeze(1)


class DenseTemporal(nn.Module):
    """The temporal encoder for one chunk of P pixels and one target date, channel-major
    (pixels innermost, as the frame models write their features, so the runtime stores them
    without transposing and every broadcast runs along P): query [d, P] (the target frame's
    token), frame_valid [K, P] (window validity, 0 for padding frames), offsets [K] (days to
    the target), then per temporal layer l its key_l and value_l [K, d, P] -> latent [L, P].

    The same arithmetic as `TemporalEncoder.forward` (its weights): per head, the logits are
    sums over the head's channels of key x query, the softmax runs over the frame axis with
    the null slot beside it, and the time-dependent value shift u enters as one small
    batched product with the attention weights instead of a [K, d, P] sum."""

    def __init__(self, ae):
        super().__init__()
        self.temporal = ae.temporal

    def forward(self, query, frame_valid, offsets, *kv):
        enc = self.temporal
        d, nh, dh = enc.d, enc.heads, enc.dh
        frames, pixels = frame_valid.shape
        time = enc.time_mlp(time_features(offsets))                        # [K, L*(nh+d)]
        mask = ((frame_valid - 1.0) * 1e9).unsqueeze(1)                    # [K, 1, P]
        h = query
        for layer in range(enc.layers):
            k, v = kv[2 * layer], kv[2 * layer + 1]                        # [K, d, P]
            t0 = layer * (nh + d)
            bias = time[:, t0:t0 + nh].unsqueeze(-1)                       # [K, nh, 1]
            u = time[:, t0 + nh:t0 + nh + d]                               # [K, d]
            q = _linear_cm(enc.wq[layer], _layer_norm_cm(enc.q_norm[layer], h)) / math.sqrt(dh)  # [d, P]
            logits = (k * q).reshape(frames, nh, dh, pixels).sum(2) + (bias + mask)           # [K, nh, P]
            null = (q * enc.null_k[layer].unsqueeze(1)).reshape(nh, dh, pixels).sum(1) + enc.null_bias[layer].unsqueeze(1)
            top = torch.maximum(logits.amax(0), null)                      # [nh, P]
            e, e_null = torch.exp(logits - top), torch.exp(null - top)
            inv = 1.0 / (e.sum(0) + e_null)
            w = e * inv                                                    # [K, nh, P]
            out = (w.unsqueeze(2) * v.reshape(frames, nh, dh, pixels)).sum(0)                 # [nh, dh, P]
            out = out + torch.matmul(u.reshape(frames, nh, dh).permute(1, 2, 0), w.permute(1, 0, 2))
            out = out + (e_null * inv).unsqueeze(1) * enc.null_v[layer].reshape(nh, dh, 1)
            h = h + _linear_cm(enc.wo[layer], out.reshape(d, pixels))
            ffn = enc.ffn[layer]
            h = h + _linear_cm(ffn.fc2, F.gelu(_linear_cm(ffn.fc1, _layer_norm_cm(ffn.norm, h))))
        return F.softplus(_linear_cm(enc.out2, F.gelu(_linear_cm(enc.out1, _layer_norm_cm(enc.out_norm, h)))))


class DenseTemporalV2(nn.Module):
    """The second per-pixel layout (read back by models.train.reexport): the temporal encoder
    for one chunk of P pixels and one target date, frame-major so that
    every input is one contiguous block and no op slices or copies a piece out of another:
    query [P, d] (the target frame's token), frame_valid [K, P] (window validity, 0 for
    padding frames), offsets [K] (days to the target), then per temporal layer l its
    key_l and value_l [K, P, d] (each frame's keys and values) -> latent [P, L].

    The same arithmetic as `TemporalEncoder.forward` (its weights, folded into fewer ops):
    the head sums are GEMMs over (frames x pixels) rows, the null slot's key is folded into
    one [d, heads] matrix, the softmax runs over the frame axis."""

    def __init__(self, ae):
        super().__init__()
        self.temporal = ae.temporal

    def forward(self, query, frame_valid, offsets, *kv):
        enc = self.temporal
        d, nh, layers = enc.d, enc.heads, enc.layers
        hs = enc.head_sum(query.device, query.dtype)                       # [d, nh]
        scale = 1.0 / math.sqrt(enc.dh)
        time = enc.time_mlp(time_features(offsets))                        # [K, L*(nh+d)]
        mask = ((frame_valid - 1.0) * 1e9).unsqueeze(-1)                   # [K, P, 1]
        h = query
        for layer in range(layers):
            k, v = kv[2 * layer], kv[2 * layer + 1]                        # [K, P, d]
            t0 = layer * (nh + d)
            bias = time[:, t0:t0 + nh].unsqueeze(1)                        # [K, 1, nh]
            u = time[:, t0 + nh:t0 + nh + d].unsqueeze(1)                  # [K, 1, d]
            q = enc.wq[layer](enc.q_norm[layer](h))                        # [P, d]
            logits = torch.matmul(k * q, hs * scale) + (bias + mask)       # [K, P, nh]
            null = torch.matmul(q, enc.null_k[layer].unsqueeze(-1) * hs * scale) + enc.null_bias[layer]  # [P, nh]
            top = torch.maximum(logits.amax(dim=0), null)
            e, e_null = torch.exp(logits - top), torch.exp(null - top)
            inv = 1.0 / (e.sum(dim=0) + e_null)
            a = torch.matmul(e * inv, hs.t())                              # [K, P, d]
            out = (a * (v + u)).sum(dim=0) + torch.matmul(e_null * inv, hs.t() * enc.null_v[layer])
            h = h + enc.wo[layer](out)
            h = h + enc.ffn[layer](h)
        return F.softplus(enc.out2(F.gelu(enc.out1(enc.out_norm(h)))))


def _linear_tokens(layer, x):
    """A Linear layer on channel-major tokens x [S, in, P] -> [S, out, P]."""
    return torch.matmul(layer.weight, x) + layer.bias.unsqueeze(1)


class DenseFusion(nn.Module):
    """Fusion for one chunk of P pixels of one date, channel-major (pixels innermost, as the
    temporal graphs give their latents): s2_latent [9, P], s1_latent [2, P], s1_gap_days [1],
    s1_present [P] in {0, 1} -> embedding [7, P].

    The same arithmetic as `Fusion.forward`, written for its two tokens [2, W, P]: the
    two-way softmax of each query is a sigmoid of the logit difference (the S1 key masked
    where S1 is absent), the weighted values v0 + a1 (v1 - v0), and the gap embedding,
    which depends on the date only, is computed once per call instead of once per pixel."""

    def __init__(self, fusion):
        super().__init__()
        self.fusion = fusion

    def _block(self, block, x, mask):
        """x [2, W, P] (S2 token, S1 token), mask [1, P] (0, or -1e9 without S1)."""
        w, nh, dh = block.width, block.heads, block.dh
        pixels = x.shape[-1]
        qkv = _linear_tokens(block.qkv, _layer_norm_cm(block.norm, x))                    # [2, 3W, P]
        q, k, v = qkv[:, :w], qkv[:, w:2 * w], qkv[:, 2 * w:]
        diff = (q * (k[1] - k[0])).reshape(2, nh, dh, pixels).sum(2) / math.sqrt(dh) + mask   # [2, nh, P]
        a1 = torch.sigmoid(diff).unsqueeze(2) * (v[1] - v[0]).reshape(1, nh, dh, pixels)      # [2, nh, dh, P]
        x = x + _linear_tokens(block.proj, v[0] + a1.reshape(2, w, pixels))
        ffn = block.ffn
        return x + _linear_tokens(ffn.fc2, F.gelu(_linear_tokens(ffn.fc1, _layer_norm_cm(ffn.norm, x))))

    def forward(self, s2_latent, s1_latent, s1_gap_days, s1_present):
        fu = self.fusion
        p = s1_present.unsqueeze(0)                                                           # [1, P]
        gap = fu.gap_mlp(time_features(torch.cat([s1_gap_days, torch.zeros_like(s1_gap_days)])))  # [2, W]
        gap = torch.where(p > 0.5, gap[0].unsqueeze(1), gap[1].unsqueeze(1))                  # [W, P]
        t2 = _linear_cm(fu.p2, s2_latent) + fu.modality[0].unsqueeze(1)
        t1 = _linear_cm(fu.p1, s1_latent * p) + fu.modality[1].unsqueeze(1) + gap
        x = torch.stack([t2, t1])                                                             # [2, W, P]
        mask = (p - 1.0) * 1e9
        for block in fu.blocks:
            x = self._block(block, x, mask)
        pooled = (x[0] + p * x[1]) / (1.0 + p)
        return F.softplus(_linear_cm(fu.out, _layer_norm_cm(fu.norm, pooled)))


class DenseFusionV2(nn.Module):
    """The second per-pixel layout's fusion (read back by models.train.reexport): one chunk
    of P pixels of one date, pixel-major: s2_latent [P, 9], s1_latent [P, 2],
    s1_gap_days [1], s1_present [P] in {0, 1} -> embedding [P, 7].

    The same arithmetic as `Fusion.forward`, written for its two tokens: the two-way
    softmax of each query is a sigmoid of the logit difference (the S1 key masked where
    S1 is absent), the weighted values v0 + a1 (v1 - v0), and the gap embedding, which
    depends on the date only, is computed once per call instead of once per pixel."""

    def __init__(self, fusion):
        super().__init__()
        self.fusion = fusion

    def _block(self, block, x, mask):
        """x [2, P, W] (S2 token, S1 token), mask [P, 1] (0, or -1e9 without S1)."""
        w = block.width
        idx = torch.arange(w, device=x.device) // block.dh
        hs = (idx[:, None] == torch.arange(block.heads, device=x.device)[None]).to(x.dtype)   # [W, nh]
        qkv = block.qkv(block.norm(x))
        q, k, v = qkv[..., :w], qkv[..., w:2 * w], qkv[..., 2 * w:]                            # [2, P, W]
        diff = torch.matmul(q * (k[1] - k[0]), hs / math.sqrt(block.dh)) + mask               # [2, P, nh]
        a1 = torch.matmul(torch.sigmoid(diff), hs.t())                                         # [2, P, W]
        x = x + block.proj(v[0] + a1 * (v[1] - v[0]))
        return x + block.ffn(x)

    def forward(self, s2_latent, s1_latent, s1_gap_days, s1_present):
        fu = self.fusion
        p = s1_present.unsqueeze(-1)                                                          # [P, 1]
        gap = fu.gap_mlp(time_features(torch.cat([s1_gap_days, torch.zeros_like(s1_gap_days)])))  # [2, W]
        gap = torch.where(p > 0.5, gap[0], gap[1])                                            # [P, W]
        t2 = fu.p2(s2_latent) + fu.modality[0]
        t1 = fu.p1(s1_latent * p) + fu.modality[1] + gap
        x = torch.stack([t2, t1])                                                             # [2, P, W]
        mask = (p - 1.0) * 1e9
        for block in fu.blocks:
            x = self._block(block, x, mask)
        pooled = (x[0] + p * x[1]) / (1.0 + p)
        return F.softplus(fu.out(fu.norm(pooled)))


class DenseTemporalV1(nn.Module):
    """The first per-pixel layout (read back by models.train.reexport, compared in tests):
    query [N, P, F], features [N, P, K, F], frame_exists [N, K], offsets [N, K] -> latent [N, P, L]."""

    def __init__(self, ae):
        super().__init__()
        self.temporal = ae.temporal

    def forward(self, query, features, frame_exists, offsets):
        time = self.temporal.time_mlp(time_features(offsets))            # [N, K, X]
        return self.temporal(query, features, frame_exists.unsqueeze(1), time.unsqueeze(1))


class DenseFusionV1(nn.Module):
    """The first per-pixel layout: s2_latent [N, P, 9], s1_latent [N, P, 2], s1_gap_days [N],
    s1_present [N, P] -> embedding [N, P, 7]."""

    def __init__(self, fusion):
        super().__init__()
        self.fusion = fusion

    def forward(self, s2_latent, s1_latent, s1_gap_days, s1_present):
        gap = s1_gap_days.unsqueeze(1) * torch.ones_like(s1_present)
        return self.fusion(s2_latent, s1_latent, gap, s1_present)


class WindowReference(nn.Module):
    """The per-window reference model: one window per sample -> one embedding.

    s2_window [N,K,C2+1,15,15], s2_frame_exists [N,K], offsets [N,K] (days, shared by both
    modalities: the S1 stack is matched to the S2 dates), target_index [N] int64,
    s1_window [N,K,C1+1,15,15], s1_frame_exists [N,K], s1_gap_days [N], s1_present [N]
    -> embedding [N,7], s2_latent [N,9], s1_latent [N,2].
    """

    def __init__(self, s2_ae, s1_ae, fusion):
        super().__init__()
        self.s2, self.s1, self.fusion = s2_ae, s1_ae, fusion

    def forward(self, s2_window, s2_frame_exists, offsets, target_index, s1_window, s1_frame_exists,
                s1_gap_days, s1_present):
        z2 = self.s2.encode(s2_window, s2_frame_exists, offsets, target_index)
        z1 = self.s1.encode(s1_window, s1_frame_exists, offsets, target_index)
        return self.fusion(z2, z1, s1_gap_days, s1_present), z2, z1


class CentreReconstruction(nn.Module):
    """Pixel-major: embedding [N, P, 7] -> Sentinel-2 reconstruction [N, P, C] of the target
    date's centre pixel, in stack units (reflectance).

    The fusion model's S2 head and the S2 decoder, cut down to the one output pixel the
    runtime needs: the decoder's centre pixel (7, 7) depends only on map cell (side // 2,
    side // 2) of `to_map` (the 3 x 3 block the stride-3 transposed convolution makes from
    it) through `conv1`'s 3 x 3 neighbourhood, so only that slice of each layer is kept.
    Equal to `decoder(to_s2(e), offsets=0)[:, 0, :, 7, 7]` (tested).
    """

    def __init__(self, fusion_model, s2_ae, scaling):
        super().__init__()
        dec = s2_ae.decoder
        assert dec.up.kernel_size == (3, 3) and dec.up.stride == (3, 3) and dec.conv1.padding == (1, 1)
        self.to_s2, self.mlp, self.to_mean = fusion_model.to_s2, dec.mlp, dec.to_mean
        width, side, c = dec.width, dec.side, dec.side // 2
        hidden = dec.to_map.in_features
        self.cell = nn.Linear(hidden, width)
        with torch.no_grad():
            self.cell.weight.copy_(dec.to_map.weight.reshape(width, side, side, hidden)[:, c, c])
            self.cell.bias.copy_(dec.to_map.bias.reshape(width, side, side)[:, c, c])
        self.up_weight = nn.Parameter(dec.up.weight.detach().clone(), requires_grad=False)   # [in, out, 3, 3]
        self.up_bias = nn.Parameter(dec.up.bias.detach().clone(), requires_grad=False)
        self.conv1_weight = nn.Parameter(dec.conv1.weight.detach().clone(), requires_grad=False)  # [out, in, 3, 3]
        self.conv1_bias = nn.Parameter(dec.conv1.bias.detach().clone(), requires_grad=False)
        self.conv2 = nn.Linear(width, dec.conv2.out_channels)
        with torch.no_grad():
            self.conv2.weight.copy_(dec.conv2.weight[:, :, 0, 0])
            self.conv2.bias.copy_(dec.conv2.bias)
        self.register_buffer("target_time", time_features(torch.zeros(1)))
        self.multiply, self.add = float(scaling["multiply"]), float(scaling["add"])

    def forward(self, embedding):
        z = self.to_s2(embedding)
        hid = self.mlp(torch.cat([z, self.target_time.expand(*z.shape[:-1], -1)], dim=-1))
        block = torch.einsum("...i,iokl->...okl", self.cell(hid), self.up_weight) + self.up_bias[:, None, None]
        block = F.gelu(block)                                                   # [..., width, 3, 3]
        centre = block[..., 1, 1] + F.gelu(torch.einsum("...ikl,oikl->...o", block, self.conv1_weight)
                                           + self.conv1_bias)
        model_scale = self.conv2(centre) + self.to_mean(hid)
        return model_scale / self.multiply - self.add
