"""Area of applicability of the GPP model (Meyer and Pebesma 2021, as in the R package CAST).

The dissimilarity index DI of a prediction is the distance of its (scaled, importance-
weighted) inputs to the nearest training sample, divided by the mean distance between
training samples. The threshold comes from the training data itself: each training
sample's DI to the nearest training sample of *another* cross-validation fold (here: of
another tower), and threshold = 75th percentile + 1.5 x interquartile range of those.
A prediction with DI above the threshold is outside the area of applicability: its inputs
are unlike anything the model was trained and validated on.

Inputs here are the model's `aoa_features` output: the standardised embedding window
averaged into three 30-day bins (21 values). Everything the runtime needs travels in the
GPP model's ONNX metadata (`to_metadata` / `from_metadata`).
"""

import base64
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np

NEAREST_CHUNK = 1024  # rows: their [1024, M] ranking stays in a core's L2 cache, and few numpy calls per row


def _pairwise(a, b):
    """Euclidean distances [len(a), len(b)] (float64 for exactness at small distances)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


@dataclass
class AreaOfApplicability:
    train: np.ndarray      # [M, K] training samples, scaled and weighted
    center: np.ndarray     # [K] training mean of each feature
    scale: np.ndarray      # [K] training standard deviation of each feature
    weights: np.ndarray    # [K] importance weights (max 1)
    mean_distance: float   # mean distance between training samples
    threshold: float       # DI above it: outside the area of applicability

    @cached_property
    def _search(self):
        """The float32 terms of the nearest-neighbour search in raw feature units, once per
        model (a map calls `dissimilarity` per block and date): the used features, their gains
        (importance / scale), the training samples in raw units, and the matrix that ranks
        them by scaled distance in one product with [x, 1] (|t|^2 - 2 (g x + o).t, with the
        scaling folded in)."""
        used = self.weights > 0
        gain = self.weights[used] / self.scale[used]
        offset = -self.center[used] * gain
        train = self.train[:, used]                                        # scaled and weighted
        ranking = np.vstack([-2.0 * gain[:, None] * train.T, ((train - 2.0 * offset) * train).sum(1)[None, :]])
        raw_train = (train - offset) / gain
        return (used, gain.astype(np.float32), np.ascontiguousarray(raw_train, np.float32),
                np.ascontiguousarray(ranking, np.float32))

    def dissimilarity(self, features):
        """DI [N] (float32) of raw aoa_features [N, K]; NaN rows give NaN.

        Computed in float32 (a map has millions of pixel-dates), in chunks small enough that
        the [chunk, M] scores stay in cache: the nearest training sample by one matrix
        product, its distance then from the difference itself, which keeps small distances
        exact. Features of weight 0 add nothing to any distance and are left out."""
        used, gain, train, ranking = self._search
        features = np.asarray(features)
        out = np.full(len(features), np.nan, np.float32)
        extended = np.ones((NEAREST_CHUNK, len(gain) + 1), np.float32)    # [x, 1]
        scores = np.empty((NEAREST_CHUNK, ranking.shape[1]), np.float32)  # reused: no page faults per chunk
        for start in range(0, len(features), NEAREST_CHUNK):
            part = extended[:min(NEAREST_CHUNK, len(features) - start)]
            part[:, :-1] = features[start:start + len(part), used]
            rows = slice(start, start + len(part))
            finite = np.isfinite(part).all(1)
            if not finite.all():
                rows, part = start + np.flatnonzero(finite), part[finite]
            nearest = np.matmul(part, ranking, out=scores[:len(part)]).argmin(1)
            difference = part[:, :-1] - train[nearest]
            difference *= gain
            out[rows] = np.sqrt((difference * difference).sum(1))
        return out / np.float32(self.mean_distance)

    def to_metadata(self):
        train = np.ascontiguousarray(self.train, np.float32)
        return {"cameo_aoa_train": base64.b64encode(train.tobytes()).decode("ascii"),
                "cameo_aoa_shape": json.dumps(list(train.shape)),
                "cameo_aoa_center": json.dumps(self.center.tolist()),
                "cameo_aoa_scale": json.dumps(self.scale.tolist()),
                "cameo_aoa_weights": json.dumps(self.weights.tolist()),
                "cameo_aoa_mean_distance": repr(float(self.mean_distance)),
                "cameo_aoa_threshold": repr(float(self.threshold))}

    @classmethod
    def from_metadata(cls, meta):
        shape = json.loads(meta["cameo_aoa_shape"])
        train = np.frombuffer(base64.b64decode(meta["cameo_aoa_train"]), np.float32).reshape(shape)
        return cls(train.astype(np.float64), np.asarray(json.loads(meta["cameo_aoa_center"])),
                   np.asarray(json.loads(meta["cameo_aoa_scale"])), np.asarray(json.loads(meta["cameo_aoa_weights"])),
                   float(meta["cameo_aoa_mean_distance"]), float(meta["cameo_aoa_threshold"]))


def training_dissimilarity(train, folds, mean_distance):
    """Each training sample's DI to the nearest training sample of another fold."""
    folds = np.asarray(folds)
    d = _pairwise(train, train)
    d[folds[:, None] == folds[None, :]] = np.inf
    return d.min(1) / mean_distance


def fit_aoa(features, folds, importance):
    """AOA from training aoa_features [M, K], their CV folds [M] and importance [K] (>= 0)."""
    features = np.asarray(features, np.float64)
    if len(np.unique(folds)) < 2:
        raise ValueError("the area of applicability needs at least two cross-validation folds")
    center, scale = features.mean(0), features.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    importance = np.clip(np.asarray(importance, np.float64), 0.0, None)
    weights = importance / importance.max() if importance.max() > 0 else np.ones_like(importance)
    train = (features - center) / scale * weights
    d = _pairwise(train, train)
    mean_distance = float(d[~np.eye(len(train), dtype=bool)].mean())
    di = training_dissimilarity(train, folds, mean_distance)
    q1, q3 = np.percentile(di[np.isfinite(di)], [25, 75])
    return AreaOfApplicability(train, center, scale, weights, mean_distance, float(q3 + 1.5 * (q3 - q1)))
