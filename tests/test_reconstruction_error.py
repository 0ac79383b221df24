"""The Sentinel-2 reconstruction error of the embeddings (cameo:embed RECONSTRUCTION_ERROR).

The exported centre-pixel decoder against the full training decoder (PyTorch), the
written error maps against a hand computation with that decoder on the real chip, and
the bundled models through qgis_process.
"""

import json

import numpy as np
import pytest
import rasterio

torch = pytest.importorskip("torch")

from models.embedding.job import embed_stacks  # noqa: E402
from models.errors import CameoInputError  # noqa: E402
from models.stack import read_stack  # noqa: E402
from models.train.export import export_models  # noqa: E402
from models.train.model import CentreReconstruction, FusionModel  # noqa: E402
from models.train.spec import MODALITIES  # noqa: E402
from tests.train_helpers import tiny_models  # noqa: E402


@pytest.fixture(scope="module")
def tiny_with_heads(tmp_path_factory):
    """Tiny random models exported with the fusion model's S2 head (so with the reconstruction)."""
    cfg, s2, s1, _, stats = tiny_models(seed=3)
    torch.manual_seed(4)
    heads = FusionModel(cfg["fusion"], cfg["s2"], cfg["s1"]).eval()
    for parameter in heads.parameters():  # big enough weights that every layer matters
        parameter.data.normal_(0.0, 0.3)
    out = tmp_path_factory.mktemp("tiny-heads")
    export_models(cfg, s2, s1, heads.fusion, stats, str(out), training_summary="tiny (tests)", heads=heads)
    return out, s2, heads


def torch_reconstruction(s2, heads, embedding):
    """Full training decoder: all 15 x 15 pixels of the target frame, then its centre."""
    with torch.no_grad():
        e = torch.from_numpy(np.asarray(embedding, np.float32))
        return s2.decoder(heads.to_s2(e), torch.zeros(len(e), 1))[:, 0, :, 7, 7].numpy()


def test_centre_slice_equals_the_full_decoder(tiny_with_heads):
    _, s2, heads = tiny_with_heads
    embedding = torch.rand(64, 7) * 3
    sliced = CentreReconstruction(heads, s2, MODALITIES["S2"]["scaling"]).eval()
    with torch.no_grad():
        got = sliced(embedding).numpy()
    expected = torch_reconstruction(s2, heads, embedding.numpy())
    assert np.abs(expected).mean() > 0.1
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_error_maps_equal_the_training_decoder_by_hand(tiny_with_heads, validation_stacks, tmp_path):
    models_dir, s2, heads = tiny_with_heads
    run = embed_stacks(validation_stacks["S2_STACK"], str(tmp_path / "emb"), s1_path=validation_stacks["S1_STACK"],
                       models_dir=str(models_dir), threads=1, tile_size=40, reconstruction_error=True)
    stack = read_stack(validation_stacks["S2_STACK"])
    with rasterio.open(run.index_path) as data:
        embedding = data.read().reshape(len(stack.dates), 7, data.height, data.width)
    with rasterio.open(run.error_index_path) as data:
        error = data.read()
        assert data.count == len(stack.dates) and data.tags()["CAMEO_FEATURES"] == "S2_RECONSTRUCTION_MAE"
    order = [stack.bands.index(b) for b in MODALITIES["S2"]["bands"]]
    valid = np.all(np.isfinite(stack.values), axis=1)
    # no data exactly where the pixel-date has no valid observation (or no embedding)
    np.testing.assert_array_equal(np.isfinite(error), valid & np.isfinite(embedding[:, 0]))
    rng = np.random.default_rng(0)
    picks = rng.choice(int(valid.sum()), 40, replace=False)
    t, y, x = (a[picks] for a in np.nonzero(valid))
    edge = np.argwhere(valid[:, :, 40])[0]  # one in the first column of the second 40 px tile
    t, y, x = np.append(t, edge[0]), np.append(y, edge[1]), np.append(x, 40)
    rec = torch_reconstruction(s2, heads, embedding[t, :, y, x])
    observed = np.clip(stack.values[t][:, order][np.arange(len(t)), :, y, x], 0.0, 1.0)
    expected = np.abs(rec - observed).mean(axis=1)
    got = error[t, y, x]
    assert np.all(np.isfinite(got))
    assert np.abs(got - expected).max() <= 1e-5
    assert expected.std() > 0  # the pixels differ: the comparison means something


def test_folder_without_the_reconstruction_model_is_refused(tiny_models_dir, validation_stacks, tmp_path):
    with pytest.raises(CameoInputError, match="cameo_s2_reconstruction.onnx"):
        embed_stacks(validation_stacks["S2_STACK"], str(tmp_path / "emb"), models_dir=str(tiny_models_dir),
                     threads=1, reconstruction_error=True)
    assert not (tmp_path / "emb").exists() or not any((tmp_path / "emb").iterdir())


def test_bundled_reconstruction_error_through_qgis_process(qgis_process, validation_stacks, tmp_path):
    out = tmp_path / "emb"
    done = qgis_process("run", "cameo:embed", "--json", "--", f"S2_STACK={validation_stacks['S2_STACK']}",
                        f"S1_STACK={validation_stacks['S1_STACK']}", "RECONSTRUCTION_ERROR=true", "THREADS=1",
                        f"OUTPUT_FOLDER={out}")
    results = json.loads(done.stdout)["results"]
    with rasterio.open(results["RECONSTRUCTION_ERRORS"]) as data:
        error = data.read()
    stack = read_stack(validation_stacks["S2_STACK"])
    valid = np.all(np.isfinite(stack.values), axis=1)
    assert np.isfinite(error).sum() == pytest.approx(valid.sum(), rel=0.01)
    finite = error[np.isfinite(error)]
    assert finite.min() >= 0
    # The bundled models reconstruct their validation chip to about 0.015-0.02 reflectance
    # (model card); a broken decoder or band order gives 0.1 and more.
    assert 0.005 < np.median(finite) < 0.04
    assert np.percentile(finite, 99) < 0.15
