"""GPP models: ONNX parity with PyTorch, metadata, cost; footprint embedding = window reference."""

import datetime

import numpy as np
import onnxruntime
import pytest
import torch

from models.gpp.footprint import embed_footprint, homogeneous_tile
from models.gpp.model import load_gpp_model
from models.runtime import embed_windows, load_models
from models.train import gpp_small


@pytest.mark.parametrize("spec", [dict(gpp_small.SMALL, steps=20),
                                  dict(gpp_small.PAPER, steps=2, width=32, heads=4, ffn=64, layers=2)])
def test_onnx_equals_pytorch(tmp_path, spec):
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 0.5, size=(40, 90, 7)).astype(np.float32)
    y = rng.normal(5, 3, size=40).astype(np.float32)
    model = gpp_small.fit(spec, x, y)
    path = tmp_path / "gpp.onnx"
    gpp_small.export_onnx(model, str(path), 90, [f"F0{i}" for i in range(1, 8)], {
        "cameo_embedding_model_name": "m", "cameo_embedding_model_version": "1", "cameo_max_gap_days": "90"})
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"embeddings": x[:7]})[0]
    with torch.no_grad():
        expected = model(torch.from_numpy(x[:7])).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    loaded = load_gpp_model(str(path))
    assert loaded.window_days == 90 and loaded.units == "g C m-2 d-1"
    assert loaded.embedding_model == ("m", "1")
    # fixed chunks: a window's GPP does not depend on what else is in the batch
    np.testing.assert_array_equal(loaded.run(x)[:7], loaded.run(x[:7]))


def test_bundled_kind_is_cheap():
    small = gpp_small.macs_per_window(gpp_small.SMALL)
    paper = gpp_small.macs_per_window(gpp_small.PAPER)
    assert small == 90 * 7 * 32 + 64 and paper > 1e7


def test_footprint_embedding_equals_window_reference(tiny_models_dir):
    models = load_models(str(tiny_models_dir))
    rng = np.random.default_rng(0)
    dates = [datetime.date(2018, 1, 1) + datetime.timedelta(days=int(d)) for d in np.cumsum(rng.integers(3, 20, 14))]
    values = rng.uniform(0.01, 0.4, size=(14, 10)).astype(np.float32)
    got = embed_footprint(models, dates, values)
    raster = homogeneous_tile(values)                            # [T, 10, 15, 15]
    expected = embed_windows(models, raster, dates, [(t, 7, 7) for t in range(14)],
                             s2_bands=models.s2.bands)
    assert got.shape == (14, 7)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_bundled_gpp_model_matches_the_bundled_embedding_models():
    """The bundled GPP model was trained on embeddings of exactly the bundled encoder/fusion files."""
    import json
    import os

    from models.manifest import MODELS_DIR, read_manifest
    from models.train.gpp_experiment import embedding_model_digests

    assert "cameo_gpp.onnx" in read_manifest(), "models/onnx/SHA256SUMS does not list cameo_gpp.onnx"
    gpp = load_gpp_model()  # verified against SHA256SUMS
    models = load_models()
    assert gpp.embedding_model == (models.name, models.version)
    assert json.loads(gpp.metadata["cameo_embedding_models_sha256"]) == embedding_model_digests(), (
        "the embedding models changed after the GPP model was trained: rerun scripts/train_gpp.sh")
    assert os.path.getsize(os.path.join(MODELS_DIR, "cameo_gpp.onnx")) < 200_000
