"""A small GPP ONNX model matching the tiny embedding models (fast; weights barely trained)."""

import numpy as np


def tiny_parts(seed=0, n=64):
    """Two random 'towers' (one daily, one monthly) in the layout gpp_lue trains on."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, resolution in enumerate(("daily", "monthly")):
        x = rng.gamma(2.0 + k, 0.5, size=(n, 90, 7)).astype(np.float32)
        ra = rng.uniform(5, 40, n).astype(np.float32)
        y = (x[:, -10:, 0].mean(1) * ra / 10).astype(np.float32)
        part = {"x": x, "ra": ra, "y": y, "resolution": resolution, "nirv": x[:, -1, 0]}
        if resolution == "monthly":
            part["month"] = np.arange(n) // 16
            part["y"] = np.bincount(part["month"], y) / 16
        parts.append(part)
    return parts


def export_tiny_gpp(path, models_dir, steps=30, embedding_version=None, seed=0):
    from models.runtime import load_models
    from models.train import gpp_experiment, gpp_lue

    models = load_models(str(models_dir))
    parts = tiny_parts(seed)
    model = gpp_lue.fit_lue(parts, dict(gpp_lue.LUE, steps=steps))
    aoa = gpp_experiment.fit_bundled_aoa(model, parts)
    gpp_lue.export_lue_onnx(model, str(path), models.output_names, {
        "cameo_model_name": "cameo-gpp-test", "cameo_model_version": "0",
        "cameo_embedding_model_name": models.name,
        "cameo_embedding_model_version": embedding_version or models.version,
        "cameo_max_gap_days": "90", **aoa.to_metadata()})
    return model
