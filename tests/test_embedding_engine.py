"""The whole-stack embedding engine on the real Belgian chip: exact, seamless, atomic.

Runs the real ONNX Runtime over real prepared stacks with tiny random-weight models
(fast); exactness and tiling are structural properties that hold for any weights.
"""

import os

import numpy as np
import pytest
import rasterio

from models.embedding.job import embed_stacks, has_observation
from models.errors import CameoCancelled, CameoInputError
from models.progress import NullProgress
from models.runtime import date_window, embed_windows, load_models
from models.stack import read_stack

FEATURES = [f"F0{i}" for i in range(1, 8)]


class LogLines(NullProgress):
    def __init__(self):
        self.lines = []

    def pushInfo(self, message):  # noqa: N802 - QgsProcessingFeedback's name
        self.lines.append(message)


@pytest.fixture(scope="module")
def crop(belgian_stacks):
    """Bounds of a 40 x 36 px part of the chip: its halo is real data, not the raster edge."""
    with rasterio.open(belgian_stacks["S2_STACK"]) as data:
        left, top = data.bounds.left, data.bounds.top
    # columns 3..43, rows 20..56 of the 64 x 64 chip (10 m pixels)
    return (left + 30, top - 560, left + 430, top - 200), (20, 3, 36, 40)


@pytest.fixture(scope="module")
def reference_run(belgian_stacks, tiny_models_dir, crop, tmp_path_factory):
    bounds, _ = crop
    folder = tmp_path_factory.mktemp("embeddings") / "tile 32 é"  # spaces and non-ASCII must work
    return embed_stacks(belgian_stacks["S2_STACK"], str(folder), s1_path=belgian_stacks["S1_STACK"],
                        bounds=bounds, tile_size=32, models_dir=str(tiny_models_dir))


def read_all(path):
    with rasterio.open(path) as data:
        return data.read()


def test_engine_equals_the_per_window_reference_model(reference_run, belgian_stacks, tiny_models_dir, crop):
    _, (row0, col0, height, width) = crop
    s2 = read_stack(belgian_stacks["S2_STACK"])
    s1 = read_stack(belgian_stacks["S1_STACK"])
    n_dates = len(s2.dates)
    output = read_all(reference_run.index_path).reshape(n_dates, 7, height, width)
    rng = np.random.default_rng(5)
    # First/last dates (off-centre windows), crop corners, and pixels whose window
    # reaches past the chip's own edge (row0 + 0 = row 20 is inside; col 3 is 3 px from it).
    points = [(0, 0, 0), (n_dates - 1, height - 1, width - 1), (1, 0, width - 1), (n_dates - 2, height - 1, 0),
              (4, 5, 0), (n_dates - 5, 0, 17)]
    points += [(int(rng.integers(n_dates)), int(rng.integers(height)), int(rng.integers(width))) for _ in range(14)]
    models = load_models(str(tiny_models_dir))
    expected = embed_windows(models, s2.values, s2.dates, [(t, y + row0, x + col0) for t, y, x in points],
                             s2_bands=s2.bands, s1_values=s1.values, s1_bands=s1.bands,
                             s1_gap_days=s1.s1_gap_days)
    got = np.stack([output[t, :, y, x] for t, y, x in points])
    finite = np.all(np.isfinite(got), axis=1)
    assert finite.sum() >= 15  # most sampled pixel-dates are observed
    assert np.abs(got[finite] - expected[finite]).max() <= 1e-4


def test_no_data_exactly_where_the_window_has_no_valid_observation(reference_run, belgian_stacks, crop):
    _, (row0, col0, height, width) = crop
    s2 = read_stack(belgian_stacks["S2_STACK"])
    n_dates = len(s2.dates)
    output = read_all(reference_run.index_path).reshape(n_dates, 7, height, width)
    valid = np.all(np.isfinite(s2.values), axis=1)[:, row0:row0 + height, col0:col0 + width]
    expected = np.zeros_like(valid)
    for t in range(n_dates):
        frames = [i for i in date_window(t, n_dates)[0] if i >= 0]
        expected[t] = valid[frames].any(axis=0)
    observed = np.all(np.isfinite(output), axis=1)
    assert np.array_equal(observed, expected)
    assert np.all(np.isnan(output).all(axis=1) | np.isfinite(output).all(axis=1))  # all 7 or none


def test_has_observation_on_a_hand_made_mask():
    valid = np.zeros((3, 3, 3), bool)  # 3 dates, 1 px + halo 1
    valid[2, 1, 1] = True
    assert has_observation(valid, halo=1, frames=11)[:, 0, 0].tolist() == [True, True, True]
    assert has_observation(valid, halo=1, frames=1)[:, 0, 0].tolist() == [False, False, True]


@pytest.mark.parametrize("tile_size", [45, 512])
def test_tile_size_does_not_change_a_single_number(reference_run, belgian_stacks, tiny_models_dir, crop,
                                                   tile_size, tmp_path):
    bounds, _ = crop
    run = embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path / "out"), s1_path=belgian_stacks["S1_STACK"],
                       bounds=bounds, tile_size=tile_size, models_dir=str(tiny_models_dir))
    assert np.array_equal(read_all(run.index_path), read_all(reference_run.index_path), equal_nan=True)


def test_compressed_scratch_of_large_runs_gives_the_same_cog_bytes(reference_run, belgian_stacks, tiny_models_dir,
                                                                   crop, tmp_path, monkeypatch):
    """Small runs write their scratch files uncompressed, large ones with DEFLATE: the
    published COGs are the same bytes either way (here: this run taken as large)."""
    import models.rasterio_io as rasterio_io

    monkeypatch.setattr(rasterio_io, "SMALL_SCRATCH_BYTES", 0)
    bounds, _ = crop
    run = embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path / "out"), s1_path=belgian_stacks["S1_STACK"],
                       bounds=bounds, tile_size=32, models_dir=str(tiny_models_dir))
    for ours, reference in zip(run.files, reference_run.files):
        with open(ours, "rb") as a, open(reference, "rb") as b:
            assert a.read() == b.read(), os.path.basename(ours)


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_count_does_not_change_a_single_number(reference_run, belgian_stacks, tiny_models_dir, crop,
                                                      threads, tmp_path):
    """Pixel chunks run concurrently (one per thread); each chunk's numbers are its own."""
    bounds, _ = crop
    log = LogLines()
    run = embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path / "out"), s1_path=belgian_stacks["S1_STACK"],
                       bounds=bounds, tile_size=45, threads=threads, models_dir=str(tiny_models_dir),
                       progress=log)
    assert np.array_equal(read_all(run.index_path), read_all(reference_run.index_path), equal_nan=True)
    assert log.lines[0].endswith(f"ONNX Runtime providers: CPUExecutionProvider; threads: {threads}")
    assert log.lines[-1].startswith("Tile 1/1: ")  # 1,440 px: two 1024-pixel chunks at once and log.lines[-1].endswith(" pixel-dates/s so far")


def test_outputs_are_cogs_with_names_dates_and_model_version(reference_run, belgian_stacks, crop):
    bounds, (_, _, height, width) = crop
    s2 = read_stack(belgian_stacks["S2_STACK"])
    assert reference_run.dates == s2.dates
    assert [os.path.basename(f) for f in reference_run.files] == [f"embedding_{d}.tif" for d in s2.dates]
    assert sorted(os.listdir(os.path.dirname(reference_run.index_path))) == sorted(
        [os.path.basename(f) for f in reference_run.files] + ["embeddings.vrt"])  # no leftovers
    middle = len(s2.dates) // 2
    with rasterio.open(reference_run.files[middle]) as data:
        assert data.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert (data.count, data.height, data.width, data.dtypes[0]) == (7, height, width, "float32")
        assert list(data.descriptions) == FEATURES
        assert data.tags()["CAMEO_DATE"] == s2.dates[middle].isoformat()
        assert data.tags()["CAMEO_MODEL_VERSION"]
        assert np.isnan(data.nodata)
        assert data.bounds == pytest.approx(bounds)
        one_date = data.read()
    with rasterio.open(reference_run.index_path) as index:
        assert index.count == 7 * len(s2.dates)
        assert index.descriptions[7 * middle] == f"{s2.dates[middle]} F01"
        assert index.tags()["CAMEO_DATES"].split(",") == [d.isoformat() for d in s2.dates]
        np.testing.assert_array_equal(index.read(list(range(7 * middle + 1, 7 * middle + 8))), one_date)


def test_an_extent_outside_the_stack_is_refused_and_nothing_written(belgian_stacks, tiny_models_dir, tmp_path):
    with pytest.raises(CameoInputError, match="does not overlap the stack"):
        embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path / "out"), bounds=(0, 0, 100, 100),
                     models_dir=str(tiny_models_dir))
    assert not (tmp_path / "out").exists()


def test_a_folder_with_another_runs_embeddings_is_refused(reference_run, belgian_stacks, tiny_models_dir):
    folder = os.path.dirname(reference_run.index_path)
    before = {name: os.path.getmtime(os.path.join(folder, name)) for name in os.listdir(folder)}
    with pytest.raises(CameoInputError, match="already holds embeddings of another run"):
        embed_stacks(belgian_stacks["S2_STACK"], folder, models_dir=str(tiny_models_dir))
    assert {name: os.path.getmtime(os.path.join(folder, name)) for name in os.listdir(folder)} == before


def test_stacks_swapped_are_refused(belgian_stacks, tiny_models_dir, tmp_path):
    with pytest.raises(CameoInputError, match="not Sentinel-2"):
        embed_stacks(belgian_stacks["S1_STACK"], str(tmp_path), models_dir=str(tiny_models_dir))
    with pytest.raises(CameoInputError, match="not Sentinel-1"):
        embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path), s1_path=belgian_stacks["S2_STACK"],
                     models_dir=str(tiny_models_dir))
    assert os.listdir(tmp_path) == []


class CancelAfter(NullProgress):
    """Cancels the run once `limit` progress reports have come in."""

    def __init__(self, limit):
        self.limit, self.reports = limit, 0

    def setProgress(self, percent):  # noqa: N802
        self.reports += 1

    def isCanceled(self):  # noqa: N802
        return self.reports >= self.limit


def test_cancelling_mid_run_leaves_no_file(belgian_stacks, tiny_models_dir, crop, tmp_path):
    bounds, _ = crop
    progress = CancelAfter(limit=3)  # inside the first of several tiles
    with pytest.raises(CameoCancelled):
        embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path), bounds=bounds, tile_size=32,
                     models_dir=str(tiny_models_dir), progress=progress)
    assert progress.reports == 3
    assert os.listdir(tmp_path) == []  # not even the staging folder


def test_device_cuda_uses_cuda_or_names_the_fix(belgian_stacks, tiny_models_dir, tmp_path):
    import onnxruntime

    from models.embedding.job import execution_providers

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert execution_providers("cuda")[0] == "CUDAExecutionProvider"
        return
    assert execution_providers("auto") == ["CPUExecutionProvider"]
    with pytest.raises(CameoInputError, match="no CUDA support.*onnxruntime-gpu"):
        embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path / "out"), device="cuda",
                     models_dir=str(tiny_models_dir))
    assert not (tmp_path / "out").exists()
