"""Command line: `python -m models.gpp evaluate|predict` (from a CAMEO checkout).

evaluate: validate the bundled (or a given) GPP model against your own flux tower:

  python -m models.gpp evaluate --footprint MY-SITE_S2_footprint.csv \\
      --gpp FLX_MY-SITE_FLUXNET2015_FULLSET_DD_2019-2020.csv --latitude 50.89 \\
      [--years 2019 2020] [--output-csv scored.csv]

  The footprint table (one row per Sentinel-2 L2A acquisition: date and footprint-mean
  reflectances B2..B12, B8A) is screened (missing bands, B02 > 0.08 = cloud or snow),
  embedded row by row as homogeneous windows without Sentinel-1, interpolated to daily
  values, and GPP is predicted for every day with a complete 90-day window, with the
  top-of-atmosphere radiation of the tower's latitude. --gpp takes FLUXNET2015 FULLSET DD
  or MM files, `date,GPP` daily and `YYYY-MM,GPP` monthly tables: daily GPP is scored per
  day (quality >= 0.7), monthly GPP per month (quality >= 0.75; the mean of the month's daily
  predictions, months whose every day has a prediction). The last line on stdout is JSON
  with n, r, r2, rmse, bias, resolution (daily or monthly) and more; --output-csv writes
  date,observed,predicted for exactly the samples scored.

predict: GPP rasters from an embeddings.vrt (the command-line twin of cameo:predictgpp).

exit status: 0 done, 2 bad input (one-line message), 1 failed, 130 cancelled.
"""

import argparse
import calendar
import csv
import json
import os
import sys

import numpy as np

from ..cli import run_cli
from ..errors import CameoInputError
from ..progress import ConsoleProgress


def scored_pairs(days, predicted, gpp, years=None):
    """(labels, observed, predicted) of the samples a GPP series scores against daily predictions."""
    import datetime

    by_day = dict(zip(days.tolist(), predicted.tolist()))
    labels, obs, pred = [], [], []
    for date, value in zip(gpp.dates, gpp.gpp):
        if years is not None and not years[0] <= date.year <= years[1]:
            continue
        if gpp.resolution == "daily":
            if date.toordinal() in by_day:
                labels.append(date.isoformat())
                obs.append(value)
                pred.append(by_day[date.toordinal()])
            continue
        month = [datetime.date(date.year, date.month, d).toordinal()
                 for d in range(1, calendar.monthrange(date.year, date.month)[1] + 1)]
        if all(d in by_day for d in month):
            labels.append(f"{date:%Y-%m}")
            obs.append(value)
            pred.append(float(np.mean([by_day[d] for d in month])))
    return labels, np.asarray(obs, np.float64), np.asarray(pred, np.float64)


def no_overlap(gpp, years):
    return CameoInputError(
        f"No {'day' if gpp.resolution == 'daily' else 'month'} with tower GPP has complete 90-day windows of "
        f"Sentinel-2 footprint rows (GPP {gpp.dates[0]} .. {gpp.dates[-1]}"
        + (f", years {years[0]}-{years[1]}" if years else "") + "): the two tables must overlap in time.")


def check_overlap(footprint_dates, gpp, years):
    """The quick test of the two tables' time spans (the full one follows the embedding)."""
    first = footprint_dates[0].toordinal() + 89
    last = footprint_dates[-1].toordinal()
    if not any(first <= d.toordinal() <= last and (years is None or years[0] <= d.year <= years[1])
               for d in gpp.dates):
        raise no_overlap(gpp, years)


def evaluate(footprint, gpp_path, latitude, *, units=None, gpp_model=None, models_dir=None, years=None,
             threads=None, output_csv=None):
    from ..runtime import load_models
    from .footprint import tower_windows
    from .metrics import gpp_metrics
    from .model import check_embedding_model, load_gpp_model
    from .series import window_bins
    from .sun import check_latitude
    from .towers import read_footprint, read_gpp

    latitude = check_latitude(latitude, "tower latitude (--latitude)")
    if output_csv and not os.path.isdir(os.path.dirname(os.path.abspath(output_csv))):
        raise CameoInputError(f"Cannot write {output_csv}: its folder does not exist.")
    gpp = read_gpp(gpp_path, units=units)
    check_overlap(read_footprint(footprint).dates, gpp, years)  # before any model is loaded
    model = load_gpp_model(gpp_model, threads=threads)
    models = load_models(models_dir, threads=threads)
    check_embedding_model(model, models.name, models.version, models.output_names, "The embedding models")
    w = tower_windows(models, footprint, latitude)
    predicted, di = model.run(window_bins(w["x"], model.bins), w["ra"])
    labels, observed, scored = scored_pairs(w["days"], predicted, gpp, years)
    if not labels:
        raise no_overlap(gpp, years)
    if output_csv:
        with open(output_csv, "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["date", "observed", "predicted"])
            out.writerows([label, f"{o:.6g}", f"{p:.6g}"] for label, o, p in zip(labels, observed, scored))
    return {"resolution": gpp.resolution, **gpp_metrics(observed, scored), "gpp_file": gpp_path,
            "gpp_kind": gpp.kind, "latitude": latitude, "first": labels[0], "last": labels[-1],
            "days_predicted": int(len(predicted)),
            "days_outside_aoa": int(np.sum(di > model.aoa.threshold)), "gpp_model": model.path,
            "units": "g C m-2 d-1"}


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m models.gpp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="metrics of the GPP model at a flux tower")
    ev.add_argument("--footprint", required=True, help="Sentinel-2 footprint table (CSV)")
    ev.add_argument("--gpp", required=True, help="tower GPP: FLUXNET2015 FULLSET DD or MM file, or a date,GPP "
                                                 "(daily) or YYYY-MM,GPP (monthly) CSV")
    ev.add_argument("--latitude", required=True, help="the tower's latitude in degrees north (for the sun)")
    ev.add_argument("--output-csv", default=None, help="write date,observed,predicted of the scored samples")
    ev.add_argument("--units", default=None, help="GPP units of a date,GPP table if its column name lacks them "
                                                  "(g C m-2 d-1 or umol m-2 s-1)")
    ev.add_argument("--years", nargs=2, type=int, default=None, metavar=("FIRST", "LAST"))
    ev.add_argument("--gpp-model", default=None, help="GPP ONNX model (default: bundled)")
    ev.add_argument("--models-dir", default=None, help="CAMEO embedding models (default: bundled)")
    ev.add_argument("--threads", type=int, default=None)
    pr = sub.add_parser("predict", help="GPP rasters from an embeddings.vrt")
    pr.add_argument("--embeddings", required=True)
    pr.add_argument("--output-folder", required=True)
    pr.add_argument("--gpp-model", default=None)
    pr.add_argument("--models-dir", default=None, help="CAMEO embedding models (default: bundled)")
    pr.add_argument("--s2-stack", default=None, help="S2 stack of embeddings made with Sentinel-1 "
                                                     "(default: from their metadata)")
    pr.add_argument("--threads", type=int, default=None)
    return parser


def main(argv=None):
    return run_cli(_run, argv)


def _run(argv):
    args = build_parser().parse_args(argv)
    if args.command == "evaluate":
        years = tuple(args.years) if args.years else None
        result = evaluate(args.footprint, args.gpp, args.latitude, units=args.units, gpp_model=args.gpp_model,
                          models_dir=args.models_dir, years=years, threads=args.threads,
                          output_csv=args.output_csv)
        print(f"{result['resolution']}: n={result['n']} RMSE={result['rmse']:.3f} R2={result['r2']:.3f} "
              f"bias={result['bias']:+.3f} r={result['r']:.3f} (g C m-2 d-1, {result['first']} .. "
              f"{result['last']})", file=sys.stderr)
        print(json.dumps(result))
        return
    from .predict import predict_gpp

    run = predict_gpp(args.embeddings, args.output_folder, model_path=args.gpp_model, s2_stack=args.s2_stack,
                      models_dir=args.models_dir,
                      threads=args.threads, progress=ConsoleProgress())
    print(json.dumps({"GPP": run.index_path, "files": run.files,
                      "predicted_dates": [d.isoformat() for d in run.predicted_dates],
                      "pixel_dates_per_second": run.pixel_dates_per_second}))
