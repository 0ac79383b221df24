"""The accuracy report of cameo:classify: an HTML page and a CSV table of the same numbers.

CSV (long format, one number per row): `measure,true_class,predicted_class,value` with
measure one of confusion (pixels), precision, recall, f1, support (pixels), overall_accuracy,
fold_accuracy (predicted_class holds the fold number).
"""

import csv
import io
from html import escape

CSV_FIELDS = ["measure", "true_class", "predicted_class", "value"]
CORNER = "true \\ predicted"


def accuracy_rows(accuracy, names):
    rows = [("overall_accuracy", "", "", f"{accuracy.overall:.6f}")]
    for i, true in enumerate(names):
        for j, predicted in enumerate(names):
            rows.append(("confusion", true, predicted, str(int(accuracy.confusion[i, j]))))
    for i, name in enumerate(names):
        rows += [("precision", name, "", f"{accuracy.precision[i]:.6f}"),
                 ("recall", name, "", f"{accuracy.recall[i]:.6f}"),
                 ("f1", name, "", f"{accuracy.f1[i]:.6f}"),
                 ("support", name, "", str(int(accuracy.support[i])))]
    rows += [("fold_accuracy", "", str(fold + 1), f"{value:.6f}") for fold, value in enumerate(accuracy.fold_accuracy)]
    return rows


def accuracy_csv(accuracy, names):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    writer.writerows(accuracy_rows(accuracy, names))
    return text.getvalue()


def _table(header, rows):
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def accuracy_html(accuracy, names, summary):
    """A self-contained page: settings, overall accuracy, confusion matrix, per-class scores, folds."""
    dates = summary["dates"]
    span = dates[0].isoformat() if len(dates) == 1 else f"{len(dates)} dates, {dates[0]} to {dates[-1]}"
    confusion = [[name] + [int(v) for v in accuracy.confusion[i]] for i, name in enumerate(names)]
    scores = [[name, f"{accuracy.precision[i]:.3f}", f"{accuracy.recall[i]:.3f}", f"{accuracy.f1[i]:.3f}",
               int(accuracy.support[i])] for i, name in enumerate(names)]
    folds = [[fold + 1, f"{value:.3f}"] for fold, value in enumerate(accuracy.fold_accuracy)]
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>CAMEO classification accuracy</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse;margin:0.5em 0 1em}}
td,th{{border:1px solid #999;padding:2px 8px;text-align:right}}</style></head><body>
<h1>Classification accuracy</h1>
<p>{escape(summary['model'])} on the embeddings of {escape(span)}; {summary['pixels']:,} training pixels
from {summary['features']} features in {summary['blocks']} spatial blocks of {summary['block_size']:g} m;
seed {summary['seed']}.</p>
<p>Spatially blocked cross-validation ({len(accuracy.fold_accuracy)} folds): each fold leaves out whole
blocks, so no test pixel has a training pixel of its own block. Pooled over the folds:</p>
<p><b>Overall accuracy: {accuracy.overall:.3f}</b></p>
<h2>Confusion matrix (pixels; rows: true class, columns: predicted)</h2>
{_table([CORNER] + names, confusion)}
<h2>Per class</h2>
{_table(["class", "precision", "recall", "F1", "pixels"], scores)}
<h2>Per fold</h2>
{_table(["fold", "accuracy"], folds)}
</body></html>
"""
