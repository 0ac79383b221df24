"""Per-pixel GPP (models.gpp.predict and cameo:predictgpp through qgis_process) on the Belgian chip."""

import csv
import datetime
import json
import os

import numpy as np
import onnxruntime
import pytest
import rasterio

from gpp_helpers import export_tiny_gpp
from models.errors import CameoInputError
from models.gpp.aoa import AreaOfApplicability
from models.gpp.predict import predict_gpp
from models.gpp.series import daily_series, day_numbers


@pytest.fixture(scope="module")
def gpp_model(tiny_models_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("gpp-model") / "gpp.onnx"
    export_tiny_gpp(path, tiny_models_dir)
    return path


@pytest.fixture(scope="module")
def chip_embeddings(belgian_stacks, tiny_models_dir, tmp_path_factory):
    """Tiny-model embeddings of a 12 x 10 px area of the Belgian chip (all 39 dates)."""
    from models.embedding.job import embed_stacks

    with rasterio.open(belgian_stacks["S2_STACK"]) as data:
        left, top = data.bounds.left, data.bounds.top
    bounds = (left + 200, top - 300, left + 320, top - 200)
    run = embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path_factory.mktemp("gpp-emb") / "emb"),
                       s1_path=belgian_stacks["S1_STACK"], bounds=bounds, tile_size=32, threads=1,
                       models_dir=str(tiny_models_dir))
    return run


@pytest.fixture(scope="module")
def s2_only_embeddings(belgian_stacks, tiny_models_dir, chip_embeddings, tmp_path_factory):
    """The same extent embedded without Sentinel-1: what GPP of S1 embeddings is computed from."""
    from models.embedding.job import embed_stacks

    with rasterio.open(chip_embeddings.index_path) as data:
        bounds = tuple(data.bounds)
    return embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path_factory.mktemp("gpp-emb-s2") / "emb"),
                        bounds=bounds, tile_size=32, threads=1, models_dir=str(tiny_models_dir)).index_path


def expected_gpp(embeddings_vrt, gpp_model_path, pixels):
    """(dates, GPP, AOA_DI) of (row, col) pixels computed independently: the pixel's series -> daily ->
    window -> ONNX with the top-of-atmosphere radiation at the pixel's latitude (FAO-56 written out
    here) -> dissimilarity by brute force from the model's metadata."""
    from rasterio.warp import transform as reproject_points

    with rasterio.open(embeddings_vrt) as data:
        dates = [datetime.date.fromisoformat(d) for d in data.tags()["CAMEO_DATES"].split(",")]
        values = data.read().reshape(len(dates), 7, data.height, data.width)
        transform, crs = data.transform, data.crs
    session = onnxruntime.InferenceSession(str(gpp_model_path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    aoa = AreaOfApplicability.from_metadata(meta)
    days = day_numbers(dates)
    gpp = np.full((len(pixels), len(dates)), np.nan, np.float32)
    di = np.full((len(pixels), len(dates)), np.nan, np.float32)
    for k, (r, c) in enumerate(pixels):
        x, y = transform * (c + 0.5, r + 0.5)
        lat = reproject_points(crs, "EPSG:4326", [x], [y])[1][0]
        phi = np.radians(lat)
        daily = daily_series(days, values[:, :, r, c], int(days[0]), int(days[-1]))
        for t in range(len(dates)):
            i = int(days[t] - days[0])
            if i >= 89 and np.all(np.isfinite(daily[i - 89:i + 1])):
                j = dates[t].timetuple().tm_yday
                dr, delta = 1 + 0.033 * np.cos(2 * np.pi * j / 365), 0.409 * np.sin(2 * np.pi * j / 365 - 1.39)
                ws = np.arccos(-np.tan(phi) * np.tan(delta))
                ra = 24 * 60 / np.pi * 0.082 * dr * (ws * np.sin(phi) * np.sin(delta)
                                                     + np.cos(phi) * np.cos(delta) * np.sin(ws))
                bins = daily[i - 89:i + 1].reshape(9, 10, 7).mean(1).T      # per feature, 10-day means
                g, f = session.run(None, {"bins": bins[None].astype(np.float32),
                                          "radiation": np.asarray([ra], np.float32)})
                z = (f[0] - aoa.center) / aoa.scale * aoa.weights
                gpp[k, t] = g[0]
                di[k, t] = np.sqrt(((aoa.train - z) ** 2).sum(1)).min() / aoa.mean_distance
    return dates, gpp, di


def read_gpp(vrt):
    with rasterio.open(vrt) as data:
        return data.read(), data.tags(), [data.descriptions[i] for i in range(data.count)]


PIXELS = [(0, 0), (9, 11), (4, 6)]


def test_predict_gpp_equals_onnx_on_each_pixel_series(chip_embeddings, s2_only_embeddings, gpp_model,
                                                      tiny_models_dir, tmp_path):
    """Embeddings made with S1 get GPP from the S2-only embedding of their stack (found from the
    embeddings' metadata), with radiation and AOA, pixel by pixel as computed by hand."""
    run = predict_gpp(chip_embeddings.index_path, str(tmp_path / "gpp"), model_path=str(gpp_model), threads=1,
                      models_dir=str(tiny_models_dir))
    dates, expected, expected_di = expected_gpp(s2_only_embeddings, gpp_model, PIXELS)
    data, tags, descriptions = read_gpp(run.index_path)
    got, got_di = data[0::2], data[1::2]
    assert descriptions[:2] == [f"{dates[0].isoformat()} GPP", f"{dates[0].isoformat()} AOA_DI"]
    assert len(descriptions) == 2 * len(dates)
    assert tags["CAMEO_DATES"].split(",") == [d.isoformat() for d in dates]
    assert float(tags["CAMEO_AOA_THRESHOLD"]) == pytest.approx(run.aoa_threshold, rel=1e-5)
    got_px = np.stack([got[:, r, c] for r, c in PIXELS])
    np.testing.assert_array_equal(np.isnan(got_px), np.isnan(expected))
    np.testing.assert_allclose(got_px, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack([got_di[:, r, c] for r, c in PIXELS]), expected_di, rtol=1e-4, atol=1e-5)
    assert np.nanmin(got) >= 0
    assert not [n for n in os.listdir(tmp_path / "gpp") if n.startswith(".")]  # S2-only pass cleaned up
    # The winter gap (2017-11-02 .. 2018-02-25, 115 days) leaves the dates before 2018-05-26 without GPP.
    assert run.predicted_dates[0] == datetime.date(2018, 5, 26)
    assert np.isnan(got[dates.index(datetime.date(2018, 5, 24))]).all()
    assert np.isfinite(got[dates.index(datetime.date(2018, 7, 5))]).all()
    with rasterio.open(run.files[-1]) as one:
        assert one.dtypes[0] == "float32" and one.units[0] == "g C m-2 d-1"
        assert one.descriptions == ("GPP", "AOA_DI")
        assert one.tags()["CAMEO_DATE"] == dates[-1].isoformat()


def test_gpp_files_do_not_depend_on_threads_or_block_rows(s2_only_embeddings, gpp_model, tmp_path):
    """Blocks are computed two at a time with two threads: the same values, bitwise, as one
    thread with other blocks (all dates of a 12 x 10 px extent)."""
    one = predict_gpp(s2_only_embeddings, str(tmp_path / "one"), model_path=str(gpp_model), threads=1)
    two = predict_gpp(s2_only_embeddings, str(tmp_path / "two"), model_path=str(gpp_model), threads=2,
                      block_rows=3)
    a, b = read_gpp(one.index_path)[0], read_gpp(two.index_path)[0]
    assert np.isfinite(a).sum() > 1000
    np.testing.assert_array_equal(a, b)


def test_s1_embeddings_without_their_stack_name_the_parameter(chip_embeddings, gpp_model, tiny_models_dir,
                                                              tmp_path):
    """Moved embeddings whose S2 stack cannot be found: one message naming S2_STACK, nothing written."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(os.path.dirname(chip_embeddings.index_path), moved)
    vrt = moved / "embeddings.vrt"
    text = vrt.read_text()
    vrt.write_text(text.replace('key="CAMEO_S2_STACK_PATH">', 'key="CAMEO_S2_STACK_PATH">/nowhere'))
    with pytest.raises(CameoInputError, match="give it as S2_STACK"):
        predict_gpp(str(vrt), str(tmp_path / "out"), model_path=str(gpp_model), models_dir=str(tiny_models_dir))
    assert os.listdir(tmp_path / "out") == []


def _vrt_with_dates(folder, dates, tiny_models_dir, version=None):
    """An embeddings output (EmbeddingWriter, as cameo:embed) with the given dates, random values."""
    from affine import Affine
    from rasterio.crs import CRS

    from models.embedding.outputs import EmbeddingWriter
    from models.runtime import load_models

    models = load_models(str(tiny_models_dir))
    os.makedirs(folder, exist_ok=True)
    writer = EmbeddingWriter(str(folder), dates, models.output_names, CRS.from_epsg(32631),
                             Affine(10, 0, 500000, 0, -10, 5600000), 4, 3,
                             {"CAMEO_MODEL_NAME": models.name, "CAMEO_MODEL_VERSION": version or models.version})
    rng = np.random.default_rng(0)
    for t in range(len(dates)):
        writer.write(t, rng.uniform(0, 2, (7, 3, 4)).astype(np.float32), 0, 0)
    return writer.publish()[1]


D = datetime.date


@pytest.mark.parametrize("case, message", [
    ("version", "was made by embedding model"),
    ("single", "has 1 date"),
    ("gap", "date gaps longer than the GPP model's window"),
    ("short", "less than the GPP model's 90-day window"),
    ("not_embeddings", "not a CAMEO embedding stack"),
])
def test_bad_inputs_one_clear_error_nothing_written(case, message, tmp_path, tiny_models_dir, gpp_model,
                                                    belgian_stacks):
    src = tmp_path / "src"
    if case == "version":
        path = _vrt_with_dates(src, [D(2018, 1, 1), D(2018, 5, 1)], tiny_models_dir, version="9.9.9")
    elif case == "single":
        path = _vrt_with_dates(src, [D(2018, 1, 1)], tiny_models_dir)
    elif case == "gap":
        path = _vrt_with_dates(src, [D(2018, 1, 1), D(2018, 1, 10), D(2018, 5, 1), D(2018, 9, 1)], tiny_models_dir)
    elif case == "short":
        path = _vrt_with_dates(src, [D(2018, 1, 1), D(2018, 2, 1)], tiny_models_dir)
    else:
        path = belgian_stacks["S2_STACK"]
    out = tmp_path / "out"
    with pytest.raises(CameoInputError, match=message):
        predict_gpp(str(path), str(out), model_path=str(gpp_model))
    assert not out.exists() or os.listdir(out) == []


def test_qgis_process_predictgpp_rasters_and_table(qgis_process, chip_embeddings, s2_only_embeddings, gpp_model,
                                                   tiny_models_dir, tmp_path):
    with rasterio.open(chip_embeddings.index_path) as data:
        t = data.transform
    x0, y0 = t * (6.5, 4.5)             # centre of pixel (row 4, col 6)
    poly = [t * (c, r) for c, r in ((9, 7), (12, 7), (12, 10), (9, 10), (9, 7))]   # rows 7-9, cols 9-11
    features = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "p"}, "geometry": {"type": "Point", "coordinates": [x0, y0]}},
        {"type": "Feature", "properties": {"name": "a"},
         "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in poly]]}}]}
    points = tmp_path / "points.geojson"
    # GeoJSON is EPSG:4326 by definition: give a CRS-tagged GeoPackage-free alternative via a .csv? Use the
    # (non-standard but GDAL-supported) crs member so QGIS reads the UTM coordinates as such.
    features["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}}
    points.write_text(json.dumps(features))
    table = tmp_path / "table.csv"
    done = qgis_process("run", "cameo:predictgpp", "--json", "--",
                        f"EMBEDDINGS={chip_embeddings.index_path}", f"MODEL={gpp_model}", "THREADS=1",
                        f"MODELS={tiny_models_dir}", f"POINTS={points}", f"TABLE={table}",
                        f"OUTPUT_FOLDER={tmp_path / 'gpp'}")
    results = json.loads(done.stdout[done.stdout.index("{"):])["results"]
    data, tags, _ = read_gpp(results["GPP"])
    got, got_di = data[0::2], data[1::2]
    threshold = float(tags["CAMEO_AOA_THRESHOLD"])
    dates, expected, _ = expected_gpp(s2_only_embeddings, gpp_model, PIXELS)
    got_px = np.stack([got[:, r, c] for r, c in PIXELS])
    np.testing.assert_array_equal(np.isnan(got_px), np.isnan(expected))
    np.testing.assert_allclose(got_px, expected, rtol=1e-5, atol=1e-5)
    assert sorted(os.listdir(tmp_path / "gpp")) == sorted([f"gpp_{d.isoformat()}.tif" for d in dates] + ["gpp.vrt"])
    rows = list(csv.DictReader(open(results["TABLE"])))
    assert len(rows) == 2 * len(dates)
    ids = sorted({r["id"] for r in rows})
    point_rows = [r for r in rows if r["id"] == ids[0]]
    poly_rows = [r for r in rows if r["id"] == ids[1]]
    for t, (pr, ar) in enumerate(zip(point_rows, poly_rows)):
        assert pr["date"] == dates[t].isoformat()
        block = got[t, 7:10, 9:12]
        di_block = got_di[t, 7:10, 9:12]
        if np.isnan(got[t, 4, 6]):
            assert pr["gpp_g_c_m2_d"] == "" and pr["pixels"] == "0" and pr["aoa_di"] == ""
        else:
            assert float(pr["gpp_g_c_m2_d"]) == pytest.approx(float(got[t, 4, 6]), rel=1e-5)
            assert float(pr["aoa_di"]) == pytest.approx(float(got_di[t, 4, 6]), rel=1e-3)
            assert ar["pixels"] == str(int(np.isfinite(block).sum()))
            assert float(ar["gpp_g_c_m2_d"]) == pytest.approx(float(np.nanmean(block)), rel=1e-5)
            assert float(ar["aoa_di"]) == pytest.approx(float(np.nanmean(di_block)), rel=1e-3)
            assert ar["outside_aoa_pixels"] == str(int((di_block > threshold).sum()))


def test_qgis_process_predictgpp_bad_input_message(qgis_process, chip_embeddings, tmp_path, tiny_models_dir):
    other = tmp_path / "other.onnx"
    export_tiny_gpp(other, tiny_models_dir, steps=1, embedding_version="0.0.1-other")
    done = qgis_process("run", "cameo:predictgpp", "--", f"EMBEDDINGS={chip_embeddings.index_path}",
                        f"MODEL={other}", f"MODELS={tiny_models_dir}", f"OUTPUT_FOLDER={tmp_path / 'out'}",
                        check=False)
    assert done.returncode != 0
    assert "was made by embedding model" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_graphical_model_runs_the_whole_chain_on_the_belgian_chip(qgis_process, data_dir, tiny_models_dir,
                                                                   gpp_model, belgian_stacks, tmp_path):
    """resources/sentinel_to_gpp.model3 through `qgis_process.bin run <model file>`: S2/S1 files -> GPP maps."""
    from models.stack import read_stack

    model_file = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources",
                              "sentinel_to_gpp.model3")
    chip = data_dir / "chips" / "belgium_00002806639B424A"
    with rasterio.open(belgian_stacks["S2_STACK"]) as data:
        left, top = data.bounds.left, data.bounds.top
    extent = f"{left + 200},{left + 320},{top - 300},{top - 200} [EPSG:32631]"
    args = ["run", model_file, "--json", "--"] + [f"S2={p}" for p in sorted(chip.glob("S2_*.nc"))]
    args += [f"S1={p}" for p in sorted(chip.glob("S1_*.nc"))]
    args += [f"EXTENT={extent}", "MIN_VALID_FRACTION=0.97", f"MODELS={tiny_models_dir}", f"GPP_MODEL={gpp_model}",
             f"prepare:Stacks={tmp_path / 'stacks'}", f"embed:Embeddings={tmp_path / 'emb'}",
             f"gpp:GPP={tmp_path / 'gpp'}"]
    qgis_process(*args)
    stack = read_stack(str(tmp_path / "stacks" / "s2_stack.tif"))
    assert stack.width == 12 and stack.height == 10  # the extent; dates >= 97 % clear within it
    assert datetime.date(2018, 7, 5) in stack.dates
    data, tags, _ = read_gpp(str(tmp_path / "gpp" / "gpp.vrt"))
    got = data[0::2]
    from models.embedding.job import embed_stacks

    s2_only = embed_stacks(str(tmp_path / "stacks" / "s2_stack.tif"), str(tmp_path / "emb-s2"), threads=1,
                           models_dir=str(tiny_models_dir)).index_path
    dates, expected, _ = expected_gpp(s2_only, gpp_model, PIXELS)
    assert tags["CAMEO_DATES"].split(",") == [d.isoformat() for d in stack.dates]
    got_px = np.stack([got[:, r, c] for r, c in PIXELS])
    np.testing.assert_array_equal(np.isnan(got_px), np.isnan(expected))
    np.testing.assert_allclose(got_px, expected, rtol=1e-5, atol=1e-5)
    assert np.isfinite(got[dates.index(datetime.date(2018, 7, 5))]).all()


def test_plugin_lists_the_graphical_model(qgis_process):
    listing = qgis_process("list").stdout
    assert "cameo:predictgpp" in listing and "cameo:sentinel_to_gpp" in listing


def _evaluate(args, repo, tiny_models_dir, gpp_model):
    import subprocess
    import sys

    base = [sys.executable, "-m", "models.gpp", "evaluate", "--models-dir", str(tiny_models_dir),
            "--gpp-model", str(gpp_model), "--threads", "1"]
    return subprocess.run(base + args, cwd=repo, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("site, gpp_file, latitude, resolution, n", [
    ("DE-HoH_HohesHolz_S2_footprint_raw_2017-2024.csv", "derived_daily_gpp_DE-HoH.csv", "52.09", "daily", 1175),
    ("DE-Kli_Klingenberg_S2_footprint_raw_2017-2024.csv", "FLX_DE-Kli_FLUXNET2015_FULLSET_MM_2004-2020_beta-3.csv",
     "50.8931", "monthly", 31),
])
def test_evaluate_command_daily_and_monthly(data_dir, tiny_models_dir, gpp_model, tmp_path, site, gpp_file,
                                            latitude, resolution, n):
    """The last stdout line is JSON; the CSV holds exactly the samples scored (same n, same metrics)."""
    from models.gpp.metrics import gpp_metrics

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    towers = data_dir / "towers"
    out = tmp_path / "scored.csv"
    done = _evaluate(["--footprint", str(towers / site), "--gpp", str(towers / gpp_file), "--latitude", latitude,
                      "--years", "2017", "2020", "--output-csv", str(out)], repo, tiny_models_dir, gpp_model)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["resolution"] == resolution and result["n"] == n   # as in the tower experiment
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == n and list(rows[0]) == ["date", "observed", "predicted"]
    assert len(rows[0]["date"]) == (10 if resolution == "daily" else 7)
    again = gpp_metrics([float(r["observed"]) for r in rows], [float(r["predicted"]) for r in rows])
    for key in ("r", "r2", "rmse", "bias"):
        assert result[key] == pytest.approx(again[key], rel=1e-4, abs=1e-5)
    assert min(float(r["predicted"]) for r in rows) >= 0


@pytest.mark.parametrize("gpp_text, latitude, message", [
    ("TIMESTAMP,GPP_DT_VUT_REF,NEE_VUT_REF_QC\n20190101,1.0,1.0\n", "52", "without the column GPP_NT_VUT_REF"),
    ("date,GPP_gC_m2_d\n2019-01,1.0\n", "5800000", "outside -90..90 degrees"),
    ("date,GPP_gC_m2_d\n1990-01,1.0\n", "52", "must overlap in time"),
])
def test_evaluate_bad_input_one_line_exit_2(data_dir, tiny_models_dir, gpp_model, tmp_path, gpp_text, latitude,
                                           message):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bad = tmp_path / "FLX_XX-Bad_FLUXNET2015_FULLSET_DD.csv"
    bad.write_text(gpp_text)
    done = _evaluate(["--footprint", str(data_dir / "towers" / "DE-HoH_HohesHolz_S2_footprint_raw_2017-2024.csv"),
                      "--gpp", str(bad), "--latitude", latitude], repo, tiny_models_dir, gpp_model)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
