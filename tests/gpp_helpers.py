"""A small GPP ONNX model matching the tiny embedding models (fast; weights barely trained)."""

import numpy as np


def export_tiny_gpp(path, models_dir, steps=30, embedding_version=None, seed=0):
    from models.runtime import load_models
    from models.train import gpp_small

    models = load_models(str(models_dir))
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 0.5, size=(64, 90, 7)).astype(np.float32)
    y = (x[:, -10:, 0].mean(1) * 4).astype(np.float32)
    spec = dict(gpp_small.SMALL, steps=steps)
    model = gpp_small.fit(spec, x, y)
    gpp_small.export_onnx(model, str(path), 90, models.output_names, {
        "cameo_model_name": "cameo-gpp-test", "cameo_model_version": "0",
        "cameo_embedding_model_name": models.name,
        "cameo_embedding_model_version": embedding_version or models.version,
        "cameo_max_gap_days": "90"})
    return model
