"""The channel-major per-pixel graphs (temporal, fusion) against the two layouts they replace.

A folder in the first or second layout is made from tiny random-weight models (the old
exports: DenseTemporalV1 / DenseFusionV1, DenseTemporalV2 / DenseFusionV2);
models.train.reexport must recover every weight exactly from its ONNX files, write graphs
that give the same numbers (<= 1e-5), and the dense engine on them must still equal the
per-window reference (<= 1e-4).
"""

import json
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from models.errors import CameoInputError  # noqa: E402
from models.manifest import MODELS_DIR, read_manifest, sha256_of, write_manifest  # noqa: E402
from models.runtime import MODEL_FILES, embed_raster, load_models, window_feeds  # noqa: E402
from models.train import reexport  # noqa: E402
from models.train.export import PIXEL_LAYOUT, export_models, torch_window_reference  # noqa: E402
from models.train.model import FusionModel, ModalityAutoencoder  # noqa: E402
from tests.train_helpers import S1_BANDS, S2_BANDS, synthetic_stack, tiny_models  # noqa: E402


def _old_layout_folder(folder, cfg, s2, s1, fusion, stats, layout="1"):
    """A model folder as an older export wrote it: the per-pixel graphs replaced by their
    first-layout (DenseTemporalV1 / DenseFusionV1) or second-layout (DenseTemporalV2 /
    DenseFusionV2) exports, with the metadata of that layout."""
    export_models(cfg, s2, s1, fusion, stats, str(folder), training_summary="tiny random weights (tests)")
    old_export = reexport._v1_export if layout == "1" else reexport._v2_export
    for role, module, kind in (("s2_temporal", s2, "temporal"), ("s1_temporal", s1, "temporal"),
                               ("fusion", fusion, "fusion")):
        path = os.path.join(folder, MODEL_FILES[role])
        meta = {p.key: p.value for p in onnx.load(path).metadata_props if p.key != "cameo_pixel_layout"}
        if layout != "1":
            meta["cameo_pixel_layout"] = layout
        old_export(module, kind, path, 17)
        model = onnx.load(path)
        for key, value in sorted(meta.items()):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, path)
    write_manifest(str(folder), list(read_manifest(str(folder))))


@pytest.fixture(scope="module", params=["1", "2"])
def converted(request, tmp_path_factory):
    cfg, s2, s1, fusion, stats = tiny_models(seed=4)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():  # the null slot starts at zero: give it values that must be recovered
        for ae in (s2, s1):
            for p in (ae.temporal.null_k, ae.temporal.null_v, ae.temporal.null_bias):
                p.copy_(torch.randn(p.shape, generator=generator))
    old = tmp_path_factory.mktemp(f"layout-{request.param}")
    _old_layout_folder(old, cfg, s2, s1, fusion, stats, request.param)
    new = tmp_path_factory.mktemp("converted")
    result = reexport.reexport(str(old), str(new))
    return old, new, result, (s2, s1, fusion)


def test_weights_are_recovered_exactly_from_the_onnx_files(converted):
    old, _, _, (s2, s1, fusion) = converted
    for role, original, kind in (("s2_temporal", s2, "temporal"), ("s1_temporal", s1, "temporal")):
        bands = 10 if role.startswith("s2") else 2
        fresh = ModalityAutoencoder(bands, json.loads(_meta(old, role)["cameo_config"])[role[:2]])
        reexport.load_weights(fresh, kind, os.path.join(old, MODEL_FILES[role]))
        for name, value in original.temporal.state_dict().items():
            assert torch.equal(fresh.temporal.state_dict()[name], value), name
    cfg = json.loads(_meta(old, "fusion")["cameo_config"])
    fresh = FusionModel(cfg["fusion"], cfg["s2"], cfg["s1"]).fusion
    reexport.load_weights(fresh, "fusion", os.path.join(old, MODEL_FILES["fusion"]))
    for name, value in fusion.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name


def test_new_graphs_give_the_numbers_of_the_old_ones(converted):
    _, new, result, _ = converted
    assert result["converted"] is True
    assert set(result["max_abs_diff"]) == {"s2_temporal", "s1_temporal", "fusion"}
    assert max(result["max_abs_diff"].values()) <= 1e-5
    assert _meta(new, "fusion")["cameo_pixel_layout"] == PIXEL_LAYOUT


def test_engine_on_converted_graphs_equals_old_graphs_and_window_reference(converted):
    old, new, _, (s2, s1, fusion) = converted
    v2, v1, dates, gaps = synthetic_stack(13, 12, 11, seed=5)
    kw = dict(s2_bands=S2_BANDS, s1_values=v1, s1_bands=S1_BANDS, s1_gap_days=gaps)
    dense = embed_raster(load_models(str(new), threads=1), v2, dates, max_pixels_per_run=48, **kw)  # 3 chunks
    points = [(0, 0, 0), (12, 11, 10), (6, 5, 5), (2, 0, 10), (10, 11, 0)]
    feeds = window_feeds(load_models(str(new), threads=1), v2, dates, points, **kw)
    reference = torch_window_reference(s2, s1, fusion, feeds)[0]
    at_points = np.stack([dense[t, :, y, x] for t, y, x in points])
    assert np.abs(at_points - reference).max() <= 1e-4
    # the frame models and the window reference keep their graphs; all files name the new layout
    for role in ("s2_frame", "s1_frame", "window_reference"):
        graphs = [onnx.load(os.path.join(f, MODEL_FILES[role])).graph.SerializeToString() for f in (old, new)]
        assert graphs[0] == graphs[1]
    present = [role for role, name in MODEL_FILES.items() if os.path.isfile(os.path.join(new, name))]
    assert len(present) >= 6 and {_meta(new, role)["cameo_pixel_layout"] for role in present} == {PIXEL_LAYOUT}
    for name, digest in read_manifest(str(new)).items():
        assert sha256_of(os.path.join(new, name)) == digest


def test_older_layout_folder_is_refused_with_the_conversion_command(converted):
    old, _, _, _ = converted
    with pytest.raises(CameoInputError, match=r"older CAMEO .*python -m models.train.reexport"):
        load_models(str(old), threads=1)


def test_a_folder_in_the_current_layout_is_left_as_it_is(converted, tmp_path):
    _, new, _, _ = converted
    folder = tmp_path / "again"
    shutil.copytree(new, folder)
    before = {n: sha256_of(os.path.join(folder, n)) for n in os.listdir(folder)}
    assert reexport.reexport(str(folder)) == {"converted": False, "max_abs_diff": {}}
    assert {n: sha256_of(os.path.join(folder, n)) for n in os.listdir(folder)} == before


def test_bundled_models_are_in_the_current_layout_and_name_each_other():
    metas = {role: _meta(MODELS_DIR, role) for role in MODEL_FILES}
    assert {m["cameo_pixel_layout"] for m in metas.values()} == {PIXEL_LAYOUT}
    assert len({(m["cameo_model_name"], m["cameo_model_version"]) for m in metas.values()}) == 1
    load_models(threads=1)  # verified against SHA256SUMS, names and versions checked


def test_cli_names_a_folder_without_models(tmp_path, capsys):
    assert reexport.main([str(tmp_path)]) == 2
    assert "has no cameo_fusion.onnx" in capsys.readouterr().err


def _meta(folder, role):
    return {p.key: p.value for p in onnx.load(os.path.join(folder, MODEL_FILES[role])).metadata_props}
