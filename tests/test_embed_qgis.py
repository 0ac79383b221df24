"""cameo:embed and cameo:embeddingrgb in real QGIS and through qgis_process."""

import datetime
import json

import numpy as np
import processing
import pytest
import rasterio
from qgis.core import (
    QgsMultiBandColorRenderer,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QDate

from models.runtime import embed_windows, load_models
from models.stack import read_stack


@pytest.fixture(scope="module")
def small_extent(belgian_stacks):
    """A 20 x 20 px extent inside the chip, as a Processing extent string."""
    with rasterio.open(belgian_stacks["S2_STACK"]) as data:
        left, top = data.bounds.left, data.bounds.top
    xmin, xmax, ymin, ymax = left + 200, left + 400, top - 300, top - 100
    return f"{xmin},{xmax},{ymin},{ymax} [EPSG:32631]", (xmin, ymin, xmax, ymax)


@pytest.fixture(scope="module")
def embed_results(qgis_app, belgian_stacks, tiny_models_dir, small_extent, tmp_path_factory):
    extent, _ = small_extent
    return processing.run("cameo:embed", {
        "S2_STACK": belgian_stacks["S2_STACK"], "S1_STACK": belgian_stacks["S1_STACK"],
        "EXTENT": extent, "TILE_SIZE": 32, "THREADS": 1, "DEVICE": 1,  # cpu
        "MODELS": str(tiny_models_dir),
        "OUTPUT_FOLDER": str(tmp_path_factory.mktemp("qgis-embed") / "out")})


def test_embed_in_qgis_writes_the_reference_numbers(embed_results, belgian_stacks, tiny_models_dir, small_extent):
    _, bounds = small_extent
    s2 = read_stack(belgian_stacks["S2_STACK"])
    s1 = read_stack(belgian_stacks["S1_STACK"])
    assert embed_results["DATES"].split(",") == [d.isoformat() for d in s2.dates]
    with rasterio.open(embed_results["EMBEDDINGS"]) as index:
        assert index.bounds == pytest.approx(bounds)
        output = index.read().reshape(len(s2.dates), 7, 20, 20)
    # The extent starts at column 20, row 10 of the chip.
    points = [(0, 0, 0), (len(s2.dates) - 1, 19, 19), (7, 3, 12)]
    expected = embed_windows(load_models(str(tiny_models_dir)), s2.values, s2.dates,
                             [(t, y + 10, x + 20) for t, y, x in points], s2_bands=s2.bands,
                             s1_values=s1.values, s1_bands=s1.bands, s1_gap_days=s1.s1_gap_days)
    got = np.stack([output[t, :, y, x] for t, y, x in points])
    assert np.all(np.isfinite(got))
    assert np.abs(got - expected).max() <= 1e-4


def test_embed_asks_qgis_to_load_one_layer_per_date(qgis_app, belgian_stacks, tiny_models_dir, small_extent,
                                                    tmp_path):
    extent, _ = small_extent
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    processing.run("cameo:embed", {"S2_STACK": belgian_stacks["S2_STACK"], "EXTENT": extent,
                                   "MODELS": str(tiny_models_dir), "OUTPUT_FOLDER": str(tmp_path / "out")},
                   context=context, feedback=QgsProcessingFeedback())
    to_load = context.layersToLoadOnCompletion()
    dates = read_stack(belgian_stacks["S2_STACK"]).dates
    assert sorted(details.name for details in to_load.values()) == [d.isoformat() for d in dates]
    assert all(details.postProcessor() is not None for details in to_load.values())


def test_loaded_layers_step_through_time_in_one_group(qgis_app, embed_results):
    from cameo.algorithms.layer_loading import DatedLayerPostProcessor, rgb_style

    folder = embed_results["OUTPUT_FOLDER"]
    project = QgsProject.instance()
    date = datetime.date.fromisoformat(embed_results["DATES"].split(",")[3])
    layer = QgsRasterLayer(f"{folder}/embedding_{date}.tif", date.isoformat())
    assert layer.isValid()
    project.addMapLayer(layer)
    context = QgsProcessingContext()
    context.setProject(project)
    DatedLayerPostProcessor(date, "CAMEO embeddings (out)", rgb_style()).postProcessLayer(
        layer, context, QgsProcessingFeedback())
    temporal = layer.temporalProperties()
    assert temporal.isActive()
    span = temporal.fixedTemporalRange()
    assert span.begin().date() == QDate(date.year, date.month, date.day)
    assert span.begin().daysTo(span.end()) == 1 and not span.includeEnd()
    group = project.layerTreeRoot().findGroup("CAMEO embeddings (out)")
    assert [node.layerId() for node in group.findLayers()] == [layer.id()]
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    with rasterio.open(layer.source()) as data:
        assert renderer.redContrastEnhancement().minimumValue() == pytest.approx(
            float(np.nanmin(data.read(1))), rel=1e-5)
    project.removeMapLayer(layer.id())


def test_embed_refuses_an_extent_outside_the_stack(qgis_app, belgian_stacks, tiny_models_dir, tmp_path):
    with pytest.raises(QgsProcessingException, match="does not overlap the stack"):
        processing.run("cameo:embed", {"S2_STACK": belgian_stacks["S2_STACK"],
                                       "EXTENT": "0,100,0,100 [EPSG:32631]", "MODELS": str(tiny_models_dir),
                                       "OUTPUT_FOLDER": str(tmp_path / "out")})
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_embedding_rgb_in_qgis_for_one_date_of_the_vrt(qgis_app, embed_results, tmp_path):
    date = embed_results["DATES"].split(",")[-1]
    results = processing.run("cameo:embeddingrgb", {"INPUT": embed_results["EMBEDDINGS"], "DATE": date,
                                                    "OUTPUT": str(tmp_path / "rgb.tif")})
    with rasterio.open(results["OUTPUT"]) as rgb:
        assert (rgb.count, rgb.dtypes[0], rgb.tags()["CAMEO_DATE"]) == (3, "uint8", date)
        image = rgb.read()
    assert image.min() >= 1 and image.max() == 255  # all 20 x 20 pixels observed, stretched


def test_embed_and_rgb_through_qgis_process(qgis_process, belgian_stacks, tiny_models_dir, small_extent, tmp_path):
    from models.embedding.job import embed_stacks

    extent, bounds = small_extent
    done = qgis_process("run", "cameo:embed", "--json", f"--S2_STACK={belgian_stacks['S2_STACK']}",
                        f"--S1_STACK={belgian_stacks['S1_STACK']}", f"--EXTENT={extent}",
                        f"--MODELS={tiny_models_dir}", "--TILE_SIZE=32", f"--OUTPUT_FOLDER={tmp_path / 'emb out'}")
    results = json.loads(done.stdout)["results"]
    dates = [d.isoformat() for d in read_stack(belgian_stacks["S2_STACK"]).dates]
    assert results["DATES"].split(",") == dates
    assert results["EMBEDDINGS"] == str(tmp_path / "emb out" / "embeddings.vrt")
    for date in dates:  # every kept date has its file, bands named F01..F07, its date inside
        with rasterio.open(tmp_path / "emb out" / f"embedding_{date}.tif") as data:
            assert list(data.descriptions) == [f"F0{i}" for i in range(1, 8)]
            assert data.tags()["CAMEO_DATE"] == date
    direct = embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path / "direct"), s1_path=belgian_stacks["S1_STACK"],
                          bounds=bounds, tile_size=256, models_dir=str(tiny_models_dir))
    with rasterio.open(results["EMBEDDINGS"]) as via_qgis, rasterio.open(direct.index_path) as engine:
        np.testing.assert_array_equal(via_qgis.read(), engine.read())  # NaN == NaN here
    done = qgis_process("run", "cameo:embeddingrgb", "--json", f"--INPUT={results['EMBEDDINGS']}",
                        f"--OUTPUT={tmp_path / 'rgb.tif'}")
    assert json.loads(done.stdout)["results"]["OUTPUT"] == str(tmp_path / "rgb.tif")
    with rasterio.open(tmp_path / "rgb.tif") as rgb:
        assert rgb.tags()["CAMEO_DATE"] == dates[0]  # no DATE: the first date


def test_embed_refuses_a_model_that_does_not_match_its_manifest(qgis_app, belgian_stacks, tiny_models_dir,
                                                                 tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    fusion = models / "cameo_fusion.onnx"
    data = bytearray(fusion.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the weights
    fusion.write_bytes(bytes(data))
    with pytest.raises(QgsProcessingException, match="cameo_fusion.onnx does not match its sha256"):
        processing.run("cameo:embed", {"S2_STACK": belgian_stacks["S2_STACK"], "MODELS": str(models),
                                       "OUTPUT_FOLDER": str(tmp_path / "out")})
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
