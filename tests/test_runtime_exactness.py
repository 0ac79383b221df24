"""Dense tile inference == per-window reference, through the exported ONNX models.

Tiny random-weight models (trained weights are checked the same way by the export
check on the real chip); the properties are structural, so they must hold for any
weights: borders (outside = invalid), first/last dates (off-centre windows), fewer
than 11 dates (padding), missing S1, tile-size independence, batch independence.
"""

import json
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.errors import CameoInputError  # noqa: E402
from models.manifest import ModelIntegrityError  # noqa: E402
from models.runtime import MODEL_FILES, OPTIONAL_ROLES, embed_raster, embed_tile, embed_windows, load_models  # noqa: E402
from models.train.export import export_models, parity_check, torch_window_reference  # noqa: E402
from models.runtime import window_feeds  # noqa: E402
from tests.train_helpers import S1_BANDS, S2_BANDS, synthetic_stack, tiny_models  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg, s2, s1, fusion, stats = tiny_models()
    out = tmp_path_factory.mktemp("onnx")
    export_models(cfg, s2, s1, fusion, stats, str(out), training_summary="tiny random weights (tests)")
    return out, (cfg, s2, s1, fusion, stats)


def _border_points(n_dates, h, w):
    return [(0, 0, 0), (n_dates - 1, h - 1, w - 1), (1, h - 1, 0), (n_dates - 2, 0, w - 1), (n_dates // 2, h // 2, w // 2),
            (4, 6, 7), (5, 3, 3), (n_dates - 1, 0, w // 2), (3, 7, 7)]


def test_dense_equals_window_with_s1_incl_borders_and_edge_dates(exported):
    out, (cfg, s2, s1, fusion, stats) = exported
    v2, v1, dates, gaps = synthetic_stack(13, 20, 18)
    points = _border_points(13, 20, 18)
    r = parity_check(str(out), s2, s1, fusion, v2, dates, S2_BANDS, points, v1, S1_BANDS, gaps, threads=1)
    assert r["dense"].shape == (13, 7, 20, 18)
    assert np.all(np.isfinite(r["dense"])) and np.all(r["dense"] >= 0)
    assert r["onnx_vs_torch"] <= 1e-5
    assert r["dense_vs_window"] <= 1e-4


def test_dense_equals_window_few_dates_and_no_s1(exported):
    out, (cfg, s2, s1, fusion, stats) = exported
    v2, _, dates, _ = synthetic_stack(6, 16, 17, seed=3, invalid=0.4)
    points = [(0, 0, 0), (5, 15, 16), (2, 8, 8), (3, 0, 16)]
    r = parity_check(str(out), s2, s1, fusion, v2, dates, S2_BANDS, points, threads=1)
    assert r["onnx_vs_torch"] <= 1e-5 and r["dense_vs_window"] <= 1e-4
    # the edge-date property: the first date's window is dates 0..10 with offsets to date 0
    models = load_models(str(out), threads=1)
    feeds = window_feeds(models, v2, dates, [(0, 4, 4)], s2_bands=S2_BANDS)
    assert feeds["target_index"][0] == 0
    assert feeds["s2_frame_exists"][0].tolist() == [1.0] * 6 + [0.0] * 5
    assert feeds["offsets"][0][:6].tolist() == [float((d - dates[0]).days) for d in dates]


def test_edge_dates_use_the_eleven_nearest_dates(exported):
    out, _ = exported
    models = load_models(str(out), threads=1)
    v2, v1, dates, gaps = synthetic_stack(15, 16, 16, seed=4)
    for t, start, pos in [(0, 0, 0), (3, 0, 3), (5, 0, 5), (7, 2, 5), (12, 4, 8), (14, 4, 10)]:
        feeds = window_feeds(models, v2, dates, [(t, 2, 2)], s2_bands=S2_BANDS)
        assert feeds["target_index"][0] == pos
        expected = [float((dates[start + k] - dates[t]).days) for k in range(11)]
        assert feeds["offsets"][0].tolist() == expected


def test_tile_size_does_not_change_numbers(exported):
    out, _ = exported
    models = load_models(str(out), threads=1)
    v2, v1, dates, gaps = synthetic_stack(12, 21, 19, seed=5)
    kw = dict(s2_bands=S2_BANDS, s1_bands=S1_BANDS, s1_gap_days=gaps)
    whole = embed_raster(models, v2, dates, s1_values=v1, **kw)
    halo = models.halo
    pad = lambda a: np.pad(a, ((0, 0), (0, 0), (halo, halo), (halo, halo)), constant_values=np.nan)  # noqa: E731
    p2, p1 = pad(v2), pad(v1)
    tiled = np.zeros_like(whole)
    for y0 in range(0, 21, 11):
        for x0 in range(0, 19, 10):
            y1, x1 = min(y0 + 11, 21), min(x0 + 10, 19)
            sl = (slice(None), slice(None), slice(y0, y1 + 2 * halo), slice(x0, x1 + 2 * halo))
            tiled[:, :, y0:y1, x0:x1] = embed_tile(models, p2[sl], dates, s1_values=p1[sl], **kw)
    assert np.abs(tiled - whole).max() <= 1e-5


def test_embedding_does_not_depend_on_the_batch(exported):
    """The reference's defect (attention across the batch) is absent: one window alone
    gives the same embedding as inside a batch of other windows."""
    out, (cfg, s2, s1, fusion, stats) = exported
    models = load_models(str(out), threads=1)
    v2, v1, dates, gaps = synthetic_stack(13, 16, 16, seed=6)
    pts = [(t, y, x) for t, y, x in zip(range(13), range(0, 16, 1), range(15, 2, -1))]
    feeds = window_feeds(models, v2, dates, pts, s2_bands=S2_BANDS, s1_values=v1, s1_bands=S1_BANDS, s1_gap_days=gaps)
    batch = torch_window_reference(s2, s1, fusion, feeds)[0]
    alone = torch_window_reference(s2, s1, fusion, {k: v[4:5] for k, v in feeds.items()})[0]
    assert np.abs(batch[4] - alone[0]).max() <= 1e-6
    assert np.abs(embed_windows(models, v2, dates, pts[4:5], s2_bands=S2_BANDS, s1_values=v1, s1_bands=S1_BANDS,
                                s1_gap_days=gaps)[0] - batch[4]).max() <= 1e-5


def test_metadata_round_trip(exported):
    out, (cfg, s2, s1, fusion, stats) = exported
    models = load_models(str(out), threads=1)
    assert models.s2.bands == S2_BANDS and models.s1.bands == S1_BANDS
    assert models.s2.units == "reflectance" and models.s1.units == "dB"
    assert np.allclose(models.s2.mean, stats["S2"]["mean"]) and np.allclose(models.s1.std, stats["S1"]["std"])
    assert (models.s1.clip_min, models.s1.clip_max, models.s1.add) == (-30.0, 5.0, 30.0)
    assert models.s1.multiply == pytest.approx(1 / 35)
    assert (models.s2.window, models.s2.frames, models.s2.halo) == (15, 11, 7)
    assert models.output_names == [f"F0{i}" for i in range(1, 8)] and models.embedding_dim == 7
    assert models.s2.feature_channels == s2.frame.feature_channels
    meta = models.metadata["window_reference"]
    assert meta["cameo_model_name"] == "cameo-bundled" and meta["cameo_role"] == "window_reference"
    assert json.loads(meta["cameo_config"])["s2"]["width"] == cfg["s2"]["width"]
    assert json.loads(meta["cameo_s1_spec"])["bands"] == S1_BANDS
    assert "tiny random weights" in meta["cameo_training_data"]


def test_wrong_bands_are_refused(exported):
    out, _ = exported
    models = load_models(str(out), threads=1)
    v2, v1, dates, gaps = synthetic_stack(11, 16, 16)
    wrong = S2_BANDS[:7] + ["B09"] + S2_BANDS[8:]
    with pytest.raises(CameoInputError, match="B8A"):
        embed_raster(models, v2, dates, s2_bands=wrong)
    with pytest.raises(CameoInputError, match="order"):
        embed_raster(models, v2, dates, s2_bands=S2_BANDS[::-1])
    with pytest.raises(CameoInputError, match="VV"):
        embed_raster(models, v2, dates, s2_bands=S2_BANDS, s1_values=v1, s1_bands=["VH", "VV"])


def test_reexport_keeps_other_models_in_the_manifest(tmp_path):
    from models.manifest import read_manifest, verified_model_path

    cfg, s2, s1, fusion, stats = tiny_models(seed=1)
    (tmp_path / "cameo_gpp.onnx").write_bytes(b"another model")
    from models.manifest import write_manifest
    write_manifest(str(tmp_path), ["cameo_gpp.onnx"])
    export_models(cfg, s2, s1, fusion, stats, str(tmp_path), training_summary="tiny")
    exported_files = {name for role, name in MODEL_FILES.items() if role not in OPTIONAL_ROLES}  # no heads given
    assert set(read_manifest(str(tmp_path))) == exported_files | {"cameo_gpp.onnx"}
    assert verified_model_path("cameo_gpp.onnx", str(tmp_path))


def test_models_not_matching_the_manifest_are_refused(exported, tmp_path):
    out, _ = exported
    copy = tmp_path / "onnx"
    shutil.copytree(out, copy)
    with open(copy / MODEL_FILES["fusion"], "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_models(str(copy), threads=1)
    os.remove(copy / MODEL_FILES["s2_frame"])
    with pytest.raises(ModelIntegrityError, match="missing"):
        load_models(str(copy), threads=1)
