"""cameo:similarity, cameo:cluster, cameo:classify on the real validation chip's embeddings.

The embeddings are the bundled models' of belgium_0000280849BAC91C (64 x 64 px, 26 dates);
every expected number is computed here from the VRT with numpy or scikit-learn directly.
"""

import csv
import json
import os
import re

import numpy as np
import processing
import pytest
import rasterio
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsRasterLayer
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score
from sklearn.model_selection import GroupKFold

from models.analysis import inputs
from models.analysis.classify import classify_embeddings, make_model
from models.analysis.similarity import similarity_to_examples
from models.errors import CameoCancelled
from models.stack import read_stack

# Two kinds of field of the chip, seen in its Sentinel-2 image of 2019-06-30: a bare (harvested)
# field at the top (NDVI about 0.3) and green crops lower down (NDVI about 0.7). Boxes of
# (first row, last row, first col, last col); the 200 m blocks of their centres: bare (0, 0),
# (0, 1); crop (1, 0), (2, 0).
FIELDS = [("bare", (1, 8, 11, 18)), ("bare", (1, 8, 21, 28)), ("bare", (10, 15, 11, 18)),
          ("crop", (31, 38, 2, 9)), ("crop", (31, 38, 12, 17)), ("crop", (48, 55, 13, 20))]
BLOCK_OF_FIELD = [0, 1, 0, 2, 2, 3]  # index of each field's 200 m block in sorted block order
EXAMPLE = (30, 20)  # (row, col) of the example point


@pytest.fixture(scope="module")
def vrt(validation_embeddings):
    return validation_embeddings.index_path


@pytest.fixture(scope="module")
def stack_values(vrt):
    """[T, 7, H, W] float64 of the VRT, its dates and transform."""
    with rasterio.open(vrt) as data:
        dates = data.tags()["CAMEO_DATES"].split(",")
        values = data.read().astype(np.float64).reshape(len(dates), 7, data.height, data.width)
        return values, dates, data.transform


def write_layer(path, features, transform):
    """A GeoJSON (EPSG:32631) of [(class, (row, col) or (r0, r1, c0, c1))]: points or pixel boxes."""
    out = []
    for label, where in features:
        if len(where) == 2:
            x, y = transform * (where[1] + 0.5, where[0] + 0.5)
            geometry = {"type": "Point", "coordinates": [x, y]}
        else:
            r0, r1, c0, c1 = where
            (x0, y0), (x1, y1) = transform * (c0, r0), transform * (c1 + 1, r1 + 1)
            geometry = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
        out.append({"type": "Feature", "properties": {"class": label}, "geometry": geometry})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": out,
                                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}}}))
    return str(path)


def hand_similarity(values, example_pixels):
    """s(p, t) = cos(e - m(t), x(t) - m(t)) [T, H, W], m = the date's mean over the raster."""
    means = values.mean(axis=(2, 3))  # the chip has no NaN embedding
    examples = np.stack([values[:, :, r, c] for r, c in example_pixels]).mean(axis=0)
    centred = values - means[:, :, None, None]
    direction = (examples - means)[:, :, None, None]
    return (centred * direction).sum(1) / (np.linalg.norm(centred, axis=1) * np.linalg.norm(direction, axis=1))


def test_similarity_is_one_at_the_example_and_equals_the_hand_computation(qgis_app, vrt, stack_values, tmp_path):
    values, dates, transform = stack_values
    result = processing.run("cameo:similarity", {
        "EMBEDDINGS": vrt, "EXAMPLES": write_layer(tmp_path / "example.geojson", [("x", EXAMPLE)], transform),
        "THRESHOLD": 0.8, "OUTPUT": str(tmp_path / "similarity.tif")})
    with rasterio.open(result["OUTPUT"]) as data:
        got = data.read()
        descriptions = data.descriptions
    assert got.shape == (len(dates) + 1, 64, 64) and result["DATES"].split(",") == dates
    assert descriptions[0] == f"{dates[0]} similarity" and descriptions[-1] == "dates with similarity >= 0.8"
    assert np.all(got[:-1, EXAMPLE[0], EXAMPLE[1]] == 1.0)  # exactly, on every date
    assert np.nanmax(got[:-1]) == 1.0
    expected = hand_similarity(values, [EXAMPLE])
    np.testing.assert_allclose(got[:-1], expected, atol=2e-6)
    np.testing.assert_array_equal(got[-1], (expected >= 0.8).sum(axis=0))
    assert got[-1, EXAMPLE[0], EXAMPLE[1]] == len(dates)


def test_similarity_to_polygons_on_one_date_in_small_blocks(vrt, stack_values, tmp_path, monkeypatch):
    """The mean over a polygon's pixels; blocks of 3 rows give the same numbers as one block."""
    values, dates, transform = stack_values
    r0, r1, c0, c1 = FIELDS[0][1]
    pixels = [(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
    x0, y0 = transform * (c0, r0)
    x1, y1 = transform * (c1 + 1, r1 + 1)
    polygon = f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
    monkeypatch.setattr(inputs, "BLOCK_BYTES", 64 * 3 * 7 * 4)
    run = similarity_to_examples(vrt, str(tmp_path / "s.tif"), polygons=[(1, polygon)], date=dates[16])
    assert run.example_pixels == len(pixels) and [d.isoformat() for d in run.dates] == [dates[16]]
    with rasterio.open(run.path) as data:
        assert data.count == 1
        got = data.read(1)
    np.testing.assert_allclose(got, hand_similarity(values[16:17], pixels)[0], atol=2e-6)


def test_cancel_leaves_nothing(qgis_app, vrt, stack_values, tmp_path, monkeypatch):
    _, _, transform = stack_values
    monkeypatch.setattr(inputs, "BLOCK_BYTES", 64 * 4 * 7 * 26 * 4)  # 16 blocks
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent > 70 else None)
    x, y = transform * (5.5, 5.5)
    with pytest.raises(CameoCancelled, match="Cancelled by the user"):
        similarity_to_examples(vrt, str(tmp_path / "s.tif"), points=[(1, (x, y))], progress=feedback)
    assert os.listdir(tmp_path) == []


def valid_features(values, dates_index):
    """[H * W, 7 * len(dates_index)] row-major pixels, dates side by side."""
    chosen = values[dates_index]  # [t, 7, H, W]
    return chosen.reshape(-1, chosen.shape[2] * chosen.shape[3]).T


def test_cluster_through_qgis_process_reproduces_scikit_learn(qgis_process, vrt, stack_values, tmp_path):
    values, dates, _ = stack_values
    done = qgis_process("run", "cameo:cluster", "--json", "--", f"EMBEDDINGS={vrt}", "K=6", "SEED=3",
                        "DATES=2019-04-01/2019-08-24", f"OUTPUT={tmp_path / 'clusters.tif'}")
    results = json.loads(done.stdout)["results"]
    chosen = [t for t, d in enumerate(dates) if "2019-04-01" <= d <= "2019-08-24"]
    assert len(chosen) == 13
    reference = KMeans(n_clusters=6, n_init=10, random_state=3).fit(valid_features(values, chosen))
    with rasterio.open(results["OUTPUT"]) as data:
        got = data.read(1)
        tags = data.tags()
        colours = data.colormap(1)
    np.testing.assert_array_equal(got.ravel(), reference.labels_ + 1)
    np.testing.assert_allclose(json.loads(tags["CAMEO_CLUSTER_CENTRES"]), reference.cluster_centers_, atol=1e-6)
    np.testing.assert_allclose(json.loads(results["CENTRES"]), reference.cluster_centers_, atol=1e-6)
    assert tags["CAMEO_CLUSTER_DATES"].split(",") == [dates[t] for t in chosen]
    assert len(tags["CAMEO_CLUSTER_FEATURES"].split(",")) == 13 * 7
    assert colours[0][3] == 0 and len({colours[c] for c in range(1, 7)}) == 6


def test_cluster_on_a_sample_assigns_every_pixel_to_the_nearest_centre(vrt, stack_values, tmp_path):
    """The path of rasters larger than the sample: fitted on a seeded uniform sample, applied to all."""
    from models.analysis.cluster import cluster_embeddings

    values, _, _ = stack_values
    x = valid_features(values, [16])
    run = cluster_embeddings(vrt, str(tmp_path / "c.tif"), k=4, seed=1, dates="2019-06-30", sample_limit=1000)
    sample = x[np.random.default_rng(1).random(len(x)) < 1000 / len(x)]  # the chip is one block
    reference = KMeans(n_clusters=4, n_init=10, random_state=1).fit(sample)
    assert run.fitted_pixels == len(sample) and 900 < len(sample) < 1100
    with rasterio.open(run.path) as data:
        np.testing.assert_array_equal(data.read(1).ravel(), reference.predict(x) + 1)


def test_training_fields_differ_clearly_in_the_s2_image(validation_stacks):
    """The two classes are what they are said to be: NDVI of 2019-06-30 below 0.4 vs above 0.6."""
    s2 = read_stack(validation_stacks["S2_STACK"])
    t = [d.isoformat() for d in s2.dates].index("2019-06-30")
    nir, red = s2.values[t, s2.bands.index("B08")], s2.values[t, s2.bands.index("B04")]
    ndvi = (nir - red) / (nir + red)
    for label, (r0, r1, c0, c1) in FIELDS:
        mean = np.nanmean(ndvi[r0:r1 + 1, c0:c1 + 1])
        assert (mean < 0.4) if label == "bare" else (mean > 0.6), (label, mean)


def training_arrays(values):
    pixels, labels, groups = [], [], []
    for (label, (r0, r1, c0, c1)), block in zip(FIELDS, BLOCK_OF_FIELD):
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                pixels.append(values[:, :, r, c].ravel())
                labels.append(1 if label == "bare" else 2)
                groups.append(block)
    return np.array(pixels), np.array(labels), np.array(groups)


def read_report(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_classify_in_qgis_reports_scikit_learns_metrics_on_the_same_folds(qgis_app, vrt, stack_values, tmp_path):
    values, _, transform = stack_values
    result = processing.run("cameo:classify", {
        "EMBEDDINGS": vrt, "TRAINING": write_layer(tmp_path / "training.geojson", FIELDS, transform),
        "FIELD": "class", "MODEL": 0, "SEED": 0, "FOLDS": 5, "BLOCK_SIZE": 200,
        "OUTPUT": str(tmp_path / "classes.tif"), "PROBABILITIES": str(tmp_path / "probabilities.tif"),
        "REPORT": str(tmp_path / "report.html"), "TABLE": str(tmp_path / "report.csv")})
    x, y, groups = training_arrays(values)
    predicted = np.zeros_like(y)
    folds = list(GroupKFold(n_splits=4).split(x, y, groups))  # 4 blocks: 4 folds
    for fit, test in folds:
        model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(x[fit], y[fit])
        predicted[test] = model.predict(x[test])
    rows = read_report(result["TABLE"])
    value = {(r["measure"], r["true_class"], r["predicted_class"]): float(r["value"]) for r in rows}
    assert result["OVERALL_ACCURACY"] == pytest.approx(accuracy_score(y, predicted), abs=1e-6)
    assert value[("overall_accuracy", "", "")] == pytest.approx(accuracy_score(y, predicted), abs=1e-6)
    assert result["OVERALL_ACCURACY"] >= 0.95  # what the README reports for these fields
    matrix = confusion_matrix(y, predicted, labels=[1, 2])
    for i, true in enumerate(("bare", "crop")):
        for j, guess in enumerate(("bare", "crop")):
            assert value[("confusion", true, guess)] == matrix[i, j]
    for measure, function in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score)):
        scores = function(y, predicted, labels=[1, 2], average=None, zero_division=0)
        assert [value[(measure, name, "")] for name in ("bare", "crop")] == pytest.approx(scores, abs=1e-6)
    fold_scores = [accuracy_score(y[test], predicted[test]) for _, test in folds]
    assert [value[("fold_accuracy", "", str(k + 1))] for k in range(4)] == pytest.approx(fold_scores, abs=1e-6)
    html = open(result["REPORT"], encoding="utf-8").read()
    assert f"Overall accuracy: {accuracy_score(y, predicted):.3f}" in html and "<td>bare</td>" in html
    final = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(x, y)
    everything = values.reshape(-1, 64 * 64).T
    with rasterio.open(result["OUTPUT"]) as data:
        classes = data.read(1)
        assert data.tags()["CAMEO_CLASSES"] == "bare,crop" and data.colormap(1)[1][:3] != data.colormap(1)[2][:3]
    np.testing.assert_array_equal(classes.ravel(), final.predict(everything))
    assert QgsRasterLayer(result["OUTPUT"], "classes").renderer().type() == "paletted"  # QGIS shows the colours
    with rasterio.open(result["PROBABILITIES"]) as data:
        probabilities = data.read()
        assert data.descriptions == ("probability bare", "probability crop")
    np.testing.assert_allclose(probabilities.reshape(2, -1).T, final.predict_proba(everything), atol=1e-6)


MIXED = ["a", "b", "b", "a", "b", "a"]  # labels that cut across the two kinds of field: not separable


@pytest.mark.parametrize("model", ["random_forest", "logistic_regression", "knn"])
def test_classify_numbers_equal_scikit_learns_on_the_same_folds_when_imperfect(vrt, stack_values, tmp_path, model):
    """Labels mixing both kinds of field, so the scores are far from 1 and must still match exactly."""
    values, _, transform = stack_values
    x, _, groups = training_arrays(values)
    y = np.concatenate([np.full((r1 - r0 + 1) * (c1 - c0 + 1), 1 if label == "a" else 2)
                        for label, (_, (r0, r1, c0, c1)) in zip(MIXED, FIELDS)])
    predicted = np.zeros_like(y)
    folds = list(GroupKFold(n_splits=4).split(x, y, groups))
    for fit, test in folds:
        predicted[test] = make_model(model, 0, len(fit)).fit(x[fit], y[fit]).predict(x[test])
    training = []
    for fid, (label, (_, (r0, r1, c0, c1))) in enumerate(zip(MIXED, FIELDS)):
        (x0, y0), (x1, y1) = transform * (c0, r0), transform * (c1 + 1, r1 + 1)
        training.append((fid, label, f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"))
    run = classify_embeddings(vrt, str(tmp_path / "c.tif"), training=training, model=model,
                              table_path=str(tmp_path / "t.csv"))
    assert 0.4 < run.accuracy.overall < 0.7  # chance level, as it should be for such labels
    assert run.accuracy.overall == pytest.approx(accuracy_score(y, predicted), abs=1e-12)
    np.testing.assert_array_equal(run.accuracy.confusion, confusion_matrix(y, predicted))
    np.testing.assert_allclose(run.accuracy.f1, f1_score(y, predicted, average=None), atol=1e-12)
    assert run.accuracy.fold_accuracy == pytest.approx([accuracy_score(y[t], predicted[t]) for _, t in folds])
    rows = read_report(tmp_path / "t.csv")
    assert float(rows[0]["value"]) == pytest.approx(accuracy_score(y, predicted), abs=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["c.tif", "t.csv"]  # no report or probabilities asked for


@pytest.fixture(scope="module")
def three_pixel_square(validation_stacks, tmp_path_factory):
    """Embeddings of a 3 x 3 px corner of the chip (9 pixels), bundled models."""
    from models.embedding.job import embed_stacks

    with rasterio.open(validation_stacks["S2_STACK"]) as data:
        left, top = data.bounds.left, data.bounds.top
    return embed_stacks(validation_stacks["S2_STACK"], str(tmp_path_factory.mktemp("emb9") / "emb"),
                        s1_path=validation_stacks["S1_STACK"], bounds=(left, top - 30, left + 30, top),
                        threads=1).index_path


def bad_cases(vrt, small_vrt, layer_of):
    far = layer_of("far", [("x", (5000, 5000))])
    one_class = layer_of("one", [("bare", where) for _, where in FIELDS])
    fields = layer_of("fields", FIELDS)
    return [
        ("cameo:similarity", {"EMBEDDINGS": vrt, "EXAMPLES": far},
         r"^None of the 1 examples lies on the embeddings embeddings\.vrt: they are outside its extent\. Check "
         r"the layer and its CRS, or give features inside the raster\.$"),
        ("cameo:classify", {"EMBEDDINGS": vrt, "TRAINING": one_class, "FIELD": "class"},
         r"^The class field 'class' holds only the class 'bare' in the 6 training feature\(s\) on the embeddings: "
         r"a classification needs at least two classes\. Add features of another class, or choose the field "
         r"that holds the classes\.$"),
        ("cameo:cluster", {"EMBEDDINGS": small_vrt, "K": 10},
         r"^K = 10 clusters need at least 10 pixels with an embedding on every chosen date, but embeddings\.vrt "
         r"has 9: choose K <= 9, fewer dates, or a larger raster\.$"),
        ("cameo:cluster", {"EMBEDDINGS": vrt, "K": 6, "DATES": "2019-04-02"},
         r"^Date 2019-04-02 is not in embeddings\.vrt, which holds 26 dates from 2018-08-04 to 2019-11-22: give "
         r"dates of the stack as YYYY-MM-DD \(several comma-separated, or a range FIRST/LAST\), or leave it "
         r"empty for all\.$"),
        ("cameo:similarity", {"EMBEDDINGS": vrt, "EXAMPLES": fields, "DATE": "2019-04-02"},
         r"^Date 2019-04-02 is not in embeddings\.vrt"),
        ("cameo:classify", {"EMBEDDINGS": vrt, "TRAINING": fields, "FIELD": "class", "DATES": "2020-01-01/2020-12-31"},
         r"^No date of embeddings\.vrt lies between 2020-01-01 and 2020-12-31: it holds 26 dates from 2018-08-04 "
         r"to 2019-11-22\."),
    ]


OUTPUTS = {"cameo:similarity": ("OUTPUT",), "cameo:cluster": ("OUTPUT",),
           "cameo:classify": ("OUTPUT", "PROBABILITIES", "REPORT", "TABLE")}
SUFFIX = {"OUTPUT": ".tif", "PROBABILITIES": ".tif", "REPORT": ".html", "TABLE": ".csv"}


def test_bad_inputs_give_one_clear_message_and_write_nothing(qgis_app, vrt, three_pixel_square, stack_values,
                                                             tmp_path):
    _, _, transform = stack_values
    layers = tmp_path / "layers"
    layers.mkdir()
    cases = bad_cases(vrt, three_pixel_square, lambda name, f: write_layer(layers / f"{name}.geojson", f, transform))
    for number, (algorithm, parameters, message) in enumerate(cases):
        out = tmp_path / f"out{number}"
        out.mkdir()
        for key in OUTPUTS[algorithm]:
            parameters[key] = str(out / f"{key.lower()}{SUFFIX[key]}")
        with pytest.raises(QgsProcessingException) as error:
            processing.run(algorithm, parameters)
        assert len(str(error.value).splitlines()) == 1, str(error.value)
        assert re.search(message, str(error.value)), (algorithm, str(error.value))
        assert os.listdir(out) == [], (algorithm, os.listdir(out))


def test_without_scikit_learn_cluster_and_classify_say_how_to_install_it(qgis_process, hide_packages, vrt,
                                                                        stack_values, tmp_path):
    hidden = hide_packages("sklearn")
    out = tmp_path / "out"
    out.mkdir()
    training = write_layer(tmp_path / "fields.geojson", FIELDS, stack_values[2])
    for arguments in ([f"EMBEDDINGS={vrt}", "K=6", f"OUTPUT={out / 'c.tif'}"],
                      [f"EMBEDDINGS={vrt}", f"TRAINING={training}", "FIELD=class", f"OUTPUT={out / 'k.tif'}",
                       f"REPORT={out / 'r.html'}", f"TABLE={out / 'r.csv'}"]):
        algorithm = "cameo:cluster" if len(arguments) == 3 else "cameo:classify"
        done = qgis_process("run", algorithm, "--", *arguments, python_path_first=hidden, check=False)
        assert done.returncode != 0
        said = done.stdout + done.stderr
        assert "CAMEO needs the Python package scikit-learn (for cameo:cluster and cameo:classify), not " \
               "installed in the Python that QGIS uses" in said
        assert re.search(r'-m pip install [-a-z ]*scikit-learn "numpy==[0-9.]+" - then restart QGIS', said)
        assert os.listdir(out) == []
    done = qgis_process("run", "cameo:checkinstall", "--json", python_path_first=hidden)
    results = json.loads(done.stdout)["results"]
    assert results["MISSING_OPTIONAL_PACKAGES"] == "scikit-learn" and results["MISSING_PACKAGES"] == ""
    assert re.search(r'-m pip install [-a-z ]*scikit-learn "numpy==', results["OPTIONAL_INSTALL_COMMAND"])
    assert results["SKLEARN_VERSION"] == "not installed"


def test_checkinstall_lists_scikit_learn_and_matplotlib(qgis_app):
    import matplotlib
    import sklearn

    results = processing.run("cameo:checkinstall", {})
    assert results["SKLEARN_VERSION"] == sklearn.__version__
    assert results["MATPLOTLIB_VERSION"] == matplotlib.__version__
    assert results["MISSING_OPTIONAL_PACKAGES"] == "" and results["OPTIONAL_INSTALL_COMMAND"] == ""


def test_cluster_and_similarity_run_inside_a_graphical_model(qgis_app, vrt, stack_values, tmp_path):
    """The modeler: a model with the embeddings as input and both algorithms as children."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterRasterLayer,
    )

    model = QgsProcessingModelAlgorithm("embeddings_overview", "tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("emb", "Embeddings"), QgsProcessingModelParameter("emb"))
    model.addModelParameter(QgsProcessingParameterFeatureSource("examples", "Examples"),
                            QgsProcessingModelParameter("examples"))
    for child_id, algorithm, static in (("cluster", "cameo:cluster", {"K": 3, "SEED": 0, "DATES": "2019-06-30"}),
                                        ("similar", "cameo:similarity", {"DATE": "2019-06-30"})):
        child = QgsProcessingModelChildAlgorithm(algorithm)
        child.setChildId(child_id)
        child.addParameterSources("EMBEDDINGS", [QgsProcessingModelChildParameterSource.fromModelParameter("emb")])
        if child_id == "similar":
            child.addParameterSources("EXAMPLES",
                                      [QgsProcessingModelChildParameterSource.fromModelParameter("examples")])
        for name, value in static.items():
            child.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])
        output = QgsProcessingModelOutput("map")
        output.setChildId(child_id)
        output.setChildOutputName("OUTPUT")
        child.setModelOutputs({"map": output})
        model.addChildAlgorithm(child)
    examples = write_layer(tmp_path / "example.geojson", [("x", EXAMPLE)], stack_values[2])
    results = processing.run(model, {"emb": vrt, "examples": examples, "cluster:map": str(tmp_path / "c.tif"),
                                     "similar:map": str(tmp_path / "s.tif")})
    values = stack_values[0]
    reference = KMeans(n_clusters=3, n_init=10, random_state=0).fit(valid_features(values, [16]))
    with rasterio.open(results["cluster:map"]) as data:
        np.testing.assert_array_equal(data.read(1).ravel(), reference.labels_ + 1)
    with rasterio.open(results["similar:map"]) as data:
        np.testing.assert_allclose(data.read(1), hand_similarity(values[16:17], [EXAMPLE])[0], atol=2e-6)


def test_loaded_in_qgis_the_classes_carry_their_names(qgis_app, vrt, stack_values, tmp_path):
    """The style Processing applies when it loads the class raster: paletted, labelled by class."""
    from qgis.core import QgsProcessingContext, QgsProject

    context = QgsProcessingContext()
    project = QgsProject()
    context.setProject(project)
    output = str(tmp_path / "classes.tif")
    parameters = {"EMBEDDINGS": vrt, "FIELD": "class", "OUTPUT": output,
                  "TRAINING": write_layer(tmp_path / "training.geojson", FIELDS, stack_values[2]),
                  "REPORT": str(tmp_path / "r.html"), "TABLE": str(tmp_path / "r.csv")}
    algorithm = qgis_app.processingRegistry().algorithmById("cameo:classify")
    context.addLayerToLoadOnCompletion(output, QgsProcessingContext.LayerDetails("classes", project, "OUTPUT"))
    results, ok = algorithm.run(parameters, context, QgsProcessingFeedback())
    assert ok and results["OUTPUT"] == output
    layer = QgsRasterLayer(output, "classes")
    context.layerToLoadOnCompletionDetails(output).postProcessor().postProcessLayer(layer, context, None)
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    assert [(c.value, c.label) for c in renderer.classes()] == [(1.0, "bare"), (2.0, "crop")]


def test_full_disk_gives_the_disk_message_and_leaves_no_file(qgis_app, vrt, stack_values, tmp_path):
    """A 64 KiB tmpfs (we run as root): the similarity of 26 dates (about 400 KB) does not fit."""
    import subprocess

    from test_reliability_faults import FULL, _mount_tmpfs, _unmount

    disk = tmp_path / "small disk"
    _mount_tmpfs(disk, "size=64k")
    try:
        with pytest.raises(QgsProcessingException, match=FULL):
            processing.run("cameo:similarity", {
                "EMBEDDINGS": vrt, "OUTPUT": str(disk / "similarity.tif"),
                "EXAMPLES": write_layer(tmp_path / "example.geojson", [("x", EXAMPLE)], stack_values[2])})
        assert os.listdir(disk) == []
    finally:
        _unmount(disk)
    assert subprocess.run(["mountpoint", "-q", str(disk)]).returncode != 0
