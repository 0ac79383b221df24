"""Command line: `python -m models.gpp evaluate|predict` (from a CAMEO checkout).

evaluate: validate the bundled (or a given) GPP model against your own flux tower:

  python -m models.gpp evaluate --footprint MY-SITE_S2_footprint.csv \\
      --gpp FLX_MY-SITE_FLUXNET2015_FULLSET_DD_2019-2020.csv [--years 2019 2020]

  The footprint table (one row per Sentinel-2 L2A acquisition: date and footprint-mean
  reflectances B2..B12, B8A) is screened (missing bands, B02 > 0.08 = cloud or snow),
  embedded row by row as homogeneous windows without Sentinel-1, interpolated to daily
  values, and GPP is predicted for every day with tower GPP (quality >= 0.7) and a
  complete 90-day window. Prints n, RMSE, NRMSE (RMSE / observed range), R2, bias and r
  in g C m-2 d-1, and the same-day NIRv correlation for comparison.

predict: GPP rasters from an embeddings.vrt (the command-line twin of cameo:predictgpp).

exit status: 0 done, 2 bad input (one-line message), 130 cancelled.
"""

import argparse
import json
import sys

import numpy as np

from ..errors import CameoCancelled, CameoError
from ..progress import ConsoleProgress


def evaluate(footprint, gpp_path, *, units=None, gpp_model=None, models_dir=None, years=None, threads=None):
    from ..runtime import load_models
    from .footprint import embed_footprint
    from .metrics import gpp_metrics
    from .model import check_embedding_model, load_gpp_model
    from .series import build_windows, day_numbers
    from .towers import read_daily_gpp, read_footprint

    fp = read_footprint(footprint)
    gpp = read_daily_gpp(gpp_path, units=units)
    model = load_gpp_model(gpp_model, threads=threads)
    models = load_models(models_dir, threads=threads)
    check_embedding_model(model, models.name, models.version, models.output_names, "The embedding models")
    emb = embed_footprint(models, fp.dates, fp.values)
    keep = [i for i, d in enumerate(gpp.dates) if years is None or years[0] <= d.year <= years[1]]
    days = day_numbers([gpp.dates[i] for i in keep])
    x, kept = build_windows(day_numbers(fp.dates), emb, days, model.window_days, model.max_gap_days)
    if len(kept) == 0:
        from ..errors import CameoInputError

        raise CameoInputError("No day with tower GPP has a complete 90-day window of Sentinel-2 footprint rows "
                              f"(rows {fp.dates[0]} .. {fp.dates[-1]}, GPP {gpp.dates[0]} .. {gpp.dates[-1]}): "
                              "the two tables must overlap in time.")
    observed = gpp.gpp[keep][kept]
    predicted = model.run(x)
    result = {"site_table": footprint, "gpp_file": gpp_path, "gpp_kind": gpp.kind,
              "footprint_rows": len(fp.dates), "rows_dropped": fp.dropped,
              "days_with_gpp": len(keep), "gpp_model": model.path,
              "first_day": str(gpp.dates[keep[kept[0]]]), "last_day": str(gpp.dates[keep[kept[-1]]]),
              "units": "g C m-2 d-1", **gpp_metrics(observed, predicted)}
    g = gpp.as_dict()
    pairs = np.asarray([(v, g[d]) for d, v in zip(fp.dates, fp.nirv) if d in g
                        and (years is None or years[0] <= d.year <= years[1])])
    if len(pairs) > 2:
        result["same_day_nirv_pairs"] = int(len(pairs))
        result["same_day_nirv_r"] = float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])
    return result


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m models.gpp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="metrics of the GPP model at a flux tower")
    ev.add_argument("--footprint", required=True, help="Sentinel-2 footprint table (CSV)")
    ev.add_argument("--gpp", required=True, help="daily GPP: FLUXNET2015 FULLSET DD file or a date,GPP CSV")
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
    pr.add_argument("--threads", type=int, default=None)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            years = tuple(args.years) if args.years else None
            result = evaluate(args.footprint, args.gpp, units=args.units, gpp_model=args.gpp_model,
                              models_dir=args.models_dir, years=years, threads=args.threads)
            print(f"n={result['n']} RMSE={result['rmse']:.3f} NRMSE={result['nrmse']:.3f} R2={result['r2']:.3f} "
                  f"bias={result['bias']:+.3f} r={result['r']:.3f} (g C m-2 d-1, {result['first_day']} .. "
                  f"{result['last_day']})", file=sys.stderr)
            print(json.dumps(result))
        else:
            from .predict import predict_gpp

            run = predict_gpp(args.embeddings, args.output_folder, model_path=args.gpp_model,
                              threads=args.threads, progress=ConsoleProgress())
            print(json.dumps({"GPP": run.index_path, "files": run.files,
                              "predicted_dates": [d.isoformat() for d in run.predicted_dates],
                              "pixel_dates_per_second": run.pixel_dates_per_second}))
    except CameoCancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except CameoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
