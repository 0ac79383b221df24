"""Classification from labelled polygons (or points), with a spatially blocked accuracy report.

Training pixels are the embeddings (chosen dates stacked, as in clustering) of every pixel
of each labelled polygon (the pixel of each point). The accuracy comes from
cross-validation in which each training feature belongs, whole, to the square block of
BLOCK_SIZE metres holding the mean position of its pixels, and each fold leaves out whole
blocks (scikit-learn's GroupKFold): neighbouring pixels, which look alike, are never split
between training and test, so the score is not inflated by spatial autocorrelation.
Pooled over the folds: the confusion matrix, overall accuracy, precision, recall and F1
per class. The model is then fitted on all training pixels and applied block by block.
"""

import os
from dataclasses import dataclass, field

import numpy as np

from ..environment import require
from ..errors import CameoInputError
from ..progress import NullProgress, check_cancelled
from .cluster import write_classes
from .defaults import BLOCK_SIZE, FOLDS, MAX_CLASSES, MODEL_LABELS, MODELS
from .inputs import band_indexes, located_features, open_embeddings, pixels_at, select_dates
from .output import check_writable
from .report import accuracy_csv, accuracy_html

DEFAULT_FOLDS, DEFAULT_BLOCK_SIZE = FOLDS, BLOCK_SIZE
KNN_NEIGHBOURS = 5


@dataclass
class TrainingSet:
    values: np.ndarray      # [n, F] float64, valid pixels only
    codes: np.ndarray       # [n] class code 1..C
    groups: np.ndarray      # [n] spatial block of the pixel's feature
    features: np.ndarray    # [n] feature id
    class_names: list       # name of code c at index c - 1


@dataclass
class Accuracy:
    confusion: np.ndarray   # [C, C]: rows true, columns predicted
    overall: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    fold_accuracy: list
    folds: np.ndarray       # [n] fold of each training pixel
    predicted: np.ndarray   # [n] out-of-fold prediction


@dataclass
class ClassifyRun:
    path: str
    dates: list
    class_names: list
    accuracy: Accuracy
    training_pixels: int
    blocks: int
    outputs: dict = field(default_factory=dict)


def make_model(name, seed, n_train):
    """The scikit-learn estimator of `name` (one of MODELS), as cameo:classify fits it."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "random_forest":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    if name == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=min(KNN_NEIGHBOURS, n_train)))
    raise CameoInputError(f"Unknown model {name!r}: choose one of {', '.join(MODELS)}.")


def label_key(value):
    """The class name of a field value (None or blank = no class)."""
    return "" if value is None else str(value).strip()


def class_names_of(labels, field_name):
    """Sorted distinct class names of the labels (numbers in numeric order); fewer than 2 are refused."""
    distinct = {v for v in labels if label_key(v)}
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct)
    names = [label_key(v) for v in sorted(distinct)] if numeric else sorted({label_key(v) for v in distinct})
    names = list(dict.fromkeys(names))
    if len(names) < 2:
        found = f"only the class {names[0]!r}" if names else "no class value"
        raise CameoInputError(
            f"The class field {field_name!r} holds {found} in the {len(labels)} training feature(s) on the "
            "embeddings: a classification needs at least two classes. Add features of another class, or "
            "choose the field that holds the classes.")
    if len(names) > MAX_CLASSES:
        raise CameoInputError(f"The class field {field_name!r} holds {len(names)} classes; at most {MAX_CLASSES} "
                              "can be mapped.")
    return names


def training_set(dataset, info, bands, training, field_name, block_size, progress):
    """The TrainingSet of `training` [(feature id, label, geometry)], geometry (x, y) or WKT."""
    points = [(fid, g) for fid, _, g in training if isinstance(g, tuple)]
    polygons = [(fid, g) for fid, _, g in training if not isinstance(g, tuple)]
    found = located_features(info, points, polygons, "training features")
    label_of = {fid: label for fid, label, _ in training}
    names = class_names_of([label_of[fid] for fid, _ in found], field_name)
    code_of = {name: code for code, name in enumerate(names, start=1)}
    found = [(fid, cells) for fid, cells in found if label_key(label_of[fid])]
    cells = [cell for _, found_cells in found for cell in found_cells]
    codes = np.concatenate([np.full(len(c), code_of[label_key(label_of[fid])]) for fid, c in found])
    feature_ids = np.concatenate([np.full(len(c), fid) for fid, c in found])
    pixel_size = abs(info.transform.a)
    blocks = [tuple((np.mean(c, axis=0) * pixel_size // block_size).astype(int)) for _, c in found]
    block_ids = {b: i for i, b in enumerate(sorted(set(blocks)))}
    groups = np.concatenate([np.full(len(c), block_ids[b]) for (_, c), b in zip(found, blocks)])
    values = pixels_at(dataset, bands, cells, progress).astype(np.float64)
    valid = np.all(np.isfinite(values), axis=1)
    result = TrainingSet(values[valid], codes[valid], groups[valid], feature_ids[valid], names)
    lacking = [n for c, n in enumerate(names, start=1) if not np.any(result.codes == c)]
    if lacking:
        raise CameoInputError(f"The training features of class {lacking[0]!r} have no pixel with an embedding "
                              "on every chosen date: choose other dates, or draw them elsewhere.")
    return result


def cross_validate(train, model_name, seed, folds, block_size, progress):
    """Out-of-fold predictions over whole spatial blocks (GroupKFold) and the pooled metrics."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
    from sklearn.model_selection import GroupKFold

    n_blocks = len(np.unique(train.groups))
    if n_blocks < 2:
        raise CameoInputError(
            f"All training features lie in one {block_size:g} m block, so the spatially blocked "
            "cross-validation has nothing to test on: lower BLOCK_SIZE, or add training features "
            f"farther than {block_size:g} m apart.")
    splitter = GroupKFold(n_splits=min(folds, n_blocks))
    predicted = np.zeros_like(train.codes)
    fold_of = np.zeros(len(train.codes), np.int64)
    fold_accuracy = []
    for fold, (fit_rows, test_rows) in enumerate(splitter.split(train.values, train.codes, train.groups)):
        check_cancelled(progress)
        model = make_model(model_name, seed, len(fit_rows)).fit(train.values[fit_rows], train.codes[fit_rows])
        predicted[test_rows] = model.predict(train.values[test_rows])
        fold_of[test_rows] = fold
        fold_accuracy.append(float(accuracy_score(train.codes[test_rows], predicted[test_rows])))
    codes = list(range(1, len(train.class_names) + 1))
    precision, recall, f1, support = precision_recall_fscore_support(
        train.codes, predicted, labels=codes, zero_division=0)
    return Accuracy(confusion_matrix(train.codes, predicted, labels=codes),
                    float(accuracy_score(train.codes, predicted)), precision, recall, f1, support,
                    fold_accuracy, fold_of, predicted)


def _check_outputs(output_path, probabilities_path, report_path, table_path):
    check_writable(output_path, "class raster")
    for path, what in ((probabilities_path, "probability raster"), (report_path, "report"),
                       (table_path, "accuracy table")):
        if path:
            check_writable(path, what)


def classify_embeddings(embeddings_path, output_path, *, training, field_name="class", model="random_forest",
                        dates=None, seed=0, folds=DEFAULT_FOLDS, block_size=DEFAULT_BLOCK_SIZE,
                        probabilities_path=None, report_path=None, table_path=None, progress=None):
    """Classify every pixel from `training` [(feature id, label, (x, y) or WKT)] in the stack's CRS.
    Writes the class raster (uint8, 0 = no data) and optionally the per-class probabilities,
    the HTML report and the CSV table; returns a ClassifyRun."""
    require("sklearn")
    progress = progress or NullProgress()
    if model not in MODELS:
        raise CameoInputError(f"Unknown model {model!r}: choose one of {', '.join(MODELS)}.")
    if folds < 2 or block_size <= 0:
        raise CameoInputError("Cross-validation needs at least 2 folds and a block size above 0 m.")
    _check_outputs(output_path, probabilities_path, report_path, table_path)
    info, dataset = open_embeddings(embeddings_path)
    with dataset:
        chosen = select_dates(info, dates)
        bands = band_indexes(info, chosen)
        train = training_set(dataset, info, bands, training, field_name, block_size, progress)
        progress.pushInfo(f"{len(train.codes):,} training pixels of {len(train.class_names)} classes in "
                          f"{len(np.unique(train.groups))} blocks of {block_size:g} m")
        accuracy = cross_validate(train, model, seed, folds, block_size, progress)
        progress.setProgress(20.0)
        final = make_model(model, seed, len(train.codes)).fit(train.values, train.codes)
        chosen_dates = [info.dates[t] for t in chosen]
        tags = {"CAMEO_CLASSES": ",".join(train.class_names), "CAMEO_CLASSIFIER": model,
                "CAMEO_CLASSIFY_DATES": ",".join(d.isoformat() for d in chosen_dates),
                "CAMEO_OVERALL_ACCURACY": f"{accuracy.overall:.4f}",
                "CAMEO_EMBEDDINGS": os.path.basename(embeddings_path)}
        extra = None
        if probabilities_path:
            extra = (probabilities_path, [f"probability {n}" for n in train.class_names],
                     lambda x: final.predict_proba(x).astype(np.float32))
        summary = dict(model=MODEL_LABELS[MODELS.index(model)], dates=chosen_dates, block_size=block_size,
                       pixels=len(train.codes), features=len(np.unique(train.features)),
                       blocks=len(np.unique(train.groups)), seed=seed)
        _write_all(dataset, info, bands, output_path, final, train, tags, extra, accuracy, summary,
                   report_path, table_path, progress)
    outputs = {"OUTPUT": os.path.abspath(output_path)}
    for key, path in (("PROBABILITIES", probabilities_path), ("REPORT", report_path), ("TABLE", table_path)):
        if path:
            outputs[key] = os.path.abspath(path)
    return ClassifyRun(os.path.abspath(output_path), chosen_dates, train.class_names, accuracy,
                       len(train.codes), summary["blocks"], outputs)


def _write_all(dataset, info, bands, output_path, final, train, tags, extra, accuracy, summary, report_path,
               table_path, progress):
    texts = []
    if report_path:
        texts.append((report_path, accuracy_html(accuracy, train.class_names, summary)))
    if table_path:
        texts.append((table_path, accuracy_csv(accuracy, train.class_names)))
    write_classes(dataset, info, bands, output_path, final.predict, len(train.class_names), tags, progress,
                  extra=extra, start_percent=20.0, texts=texts)
