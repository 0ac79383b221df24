"""GPP models: ONNX parity with PyTorch, metadata, cost; footprint embedding = window reference."""

import datetime

import numpy as np
import onnxruntime
import pytest
import torch

from models.gpp.footprint import embed_footprint, homogeneous_tile
from models.gpp.model import load_gpp_model
from models.gpp.series import window_bins
from models.runtime import embed_windows, load_models
from models.train import gpp_small


def test_site_loss_by_hand_daily_and_monthly():
    """Per day: mean |e| or e^2 of the errors; per month: of the month means of the daily
    predictions; errors in units of the GPP std."""
    from models.train.gpp_lue import GPP_STD, site_loss

    gpp = torch.tensor([1.0, 3.0, 5.0, 9.0])
    daily = {"y_batch": torch.tensor([2.0, 3.0, 3.0, 9.0])}                  # errors -1, 0, 2, 0
    assert site_loss(gpp, daily, None, "l1").item() == pytest.approx(3 / 4 / GPP_STD)
    assert site_loss(gpp, daily, None, "l2").item() == pytest.approx(5 / 4 / GPP_STD ** 2)
    # days 0-1 are month 1 (mean 2, observed 4), days 2-3 month 0 (mean 7, observed 6)
    monthly = {"y": torch.tensor([6.0, 4.0])}
    months = (torch.tensor([1, 0]), torch.tensor([0, 0, 1, 1]))
    assert site_loss(gpp, monthly, months, "l1").item() == pytest.approx((2 + 1) / 2 / GPP_STD)
    assert site_loss(gpp, monthly, months, "l2").item() == pytest.approx((4 + 1) / 2 / GPP_STD ** 2)


def test_lue_onnx_equals_pytorch_and_is_never_negative(tmp_path):
    from gpp_helpers import tiny_parts

    from models.train import gpp_experiment, gpp_lue

    parts = tiny_parts(3)
    model = gpp_lue.fit_lue(parts, dict(gpp_lue.LUE, steps=40))
    aoa = gpp_experiment.fit_bundled_aoa(model, parts)
    path = tmp_path / "gpp.onnx"
    gpp_lue.export_lue_onnx(model, str(path), [f"F0{i}" for i in range(1, 8)], {
        "cameo_embedding_model_name": "m", "cameo_embedding_model_version": "1", "cameo_max_gap_days": "90",
        **aoa.to_metadata()})
    x, ra = parts[0]["x"][:7], parts[0]["ra"][:7]
    bins = window_bins(x, 9)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, features = session.run(None, {"bins": bins.astype(np.float32), "radiation": ra})
    with torch.no_grad():
        expected, expected_features = model(torch.from_numpy(x), torch.from_numpy(ra))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(features, expected_features.numpy(), rtol=1e-5, atol=1e-5)
    # AOA features: the standardised window averaged over three 30-day bins, by hand
    mean, std = np.asarray(model.spec["mean"]), np.asarray(model.spec["std"])
    by_hand = ((x - mean) / std).reshape(7, 3, 30, 7).mean(2).reshape(7, 21)
    np.testing.assert_allclose(features, by_hand, rtol=1e-4, atol=1e-4)
    loaded = load_gpp_model(str(path))
    assert loaded.window_days == 90 and loaded.units == "g C m-2 d-1"
    assert loaded.embedding_model == ("m", "1")
    gpp, di = loaded.run(bins, ra)
    np.testing.assert_allclose(gpp, got, rtol=1e-6)
    np.testing.assert_allclose(di, aoa.dissimilarity(features), rtol=1e-5, atol=1e-6)
    # fixed chunks: a window's GPP does not depend on what else is in the batch
    np.testing.assert_array_equal(loaded.run(window_bins(parts[0]["x"], 9), parts[0]["ra"])[0][:7], gpp)
    # GPP = radiation x efficiency: proportional to radiation, zero without sun, never negative
    wild = np.random.default_rng(1).normal(0, 50, size=(64, 7, 9)).astype(np.float32)
    g1, _ = loaded.run(wild, np.full(64, 10, np.float32))
    g2, _ = loaded.run(wild, np.full(64, 30, np.float32))
    g0, _ = loaded.run(wild, np.zeros(64, np.float32))
    assert (g1 >= 0).all() and (g0 == 0).all()
    np.testing.assert_allclose(g2, 3 * g1, rtol=1e-5)


def test_bundled_kind_is_cheap():
    from models.train import gpp_lue

    lue = gpp_lue.macs_per_window(gpp_lue.LUE)
    paper = gpp_small.macs_per_window(gpp_small.PAPER)
    assert lue == 7 and paper > 1e7  # a linear efficiency of the last bin's 7 means


def test_old_gpp_models_are_refused_with_the_fix(tmp_path):
    """A format-1 GPP model (no radiation input, no AOA) fails with a message naming the fix."""
    import onnx
    from onnx import TensorProto, helper

    from models.errors import CameoInputError

    graph = helper.make_graph([helper.make_node("ReduceMean", ["embeddings"], ["gpp"], axes=[1, 2], keepdims=0)],
                              "g", [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [None, 90, 7])],
                              [helper.make_tensor_value_info("gpp", TensorProto.FLOAT, [None])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    for k, v in {"cameo_role": "gpp", "cameo_metadata_format": "1"}.items():
        m.metadata_props.add(key=k, value=v)
    path = str(tmp_path / "old-gpp.onnx")
    onnx.save(m, path)
    with pytest.raises(CameoInputError, match="older CAMEO .* re-train and export it"):
        load_gpp_model(path)


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


@pytest.mark.parametrize("bundled", [True, False])
def test_declared_used_bins_are_the_ones_the_outputs_depend_on(bundled, tmp_path):
    """cameo_used_bins (the runtime feeds zeros for the other bins): the last-bin efficiency and
    the AOA features of non-zero weight (here the last 30 days) depend on bins 6-8 only. Any values
    in the others change neither GPP nor the dissimilarity; a change in a used bin changes them."""
    from gpp_helpers import tiny_parts

    from models.train import gpp_experiment, gpp_lue

    if bundled:
        model = load_gpp_model()
    else:
        parts = tiny_parts(3)
        lue = gpp_lue.fit_lue(parts, dict(gpp_lue.LUE, steps=20))
        aoa = gpp_experiment.fit_bundled_aoa(lue, parts)
        aoa.weights[:7] = 0.0                       # the first 30-day bin unused by the AOA ...
        aoa.weights[7] = 0.5                        # ... the second one used through feature F01
        path = str(tmp_path / "gpp.onnx")
        gpp_lue.export_lue_onnx(lue, path, [f"F0{i}" for i in range(1, 8)], {
            "cameo_embedding_model_name": "m", "cameo_embedding_model_version": "1", "cameo_max_gap_days": "90",
            **aoa.to_metadata()})
        model = load_gpp_model(path)
    expected = [6, 7, 8] if bundled else [3, 4, 5, 6, 7, 8]
    assert model.used_bins == expected
    rng = np.random.default_rng(2)
    bins = rng.normal(0, 1, size=(256, 7, 9)).astype(np.float32)
    ra = rng.uniform(5, 40, 256).astype(np.float32)
    gpp, di = model.run(bins, ra)
    unused = [b for b in range(9) if b not in expected]
    other = bins.copy()
    other[:, :, unused] = rng.normal(0, 5, size=(256, 7, len(unused)))
    np.testing.assert_array_equal(model.run(other, ra)[0], gpp)
    np.testing.assert_array_equal(model.run(other, ra)[1], di)
    for b in expected[:1] + expected[-1:]:
        moved = bins.copy()
        moved[:, :, b] += 1.0
        g, d = model.run(moved, ra)
        assert np.abs(d - di).max() > 1e-3 and (b != 8 or np.abs(g - gpp).max() > 1e-3)
