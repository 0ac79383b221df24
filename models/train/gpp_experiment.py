"""GPP on five real flux towers: data, honest splits, baselines, figures, the bundled model.

    python -m models.train.gpp_experiment [--models-dir models/onnx] [--out runs/gpp]
        [--paper] [--export models/onnx] [--figures models/figures]

Data (../shared/data/towers, $CAMEO_DATA), years 2017-2020: DE-HoH, FR-Fon (deciduous),
FI-Hyy (evergreen) with daily GPP; DE-Kli (cropland) and IT-Tor (alpine grassland) with
monthly GPP only (FLUXNET2015 FULLSET MM files, months with NEE_VUT_REF_QC >= 0.75). Each
site's screened footprint rows (models.gpp.towers.SCREEN_RULE) are embedded as homogeneous
windows without Sentinel-1 (models.gpp.footprint), interpolated to daily values; every day
of 2017-2020 with a complete 90-day window gets a window, its top-of-atmosphere radiation
(models.gpp.sun, from the tower's latitude) and its NIRv (daily-interpolated).

Splits, the same samples for every model:
- leave-one-site-out (LOSO): train on the four other sites, test on the fifth;
- temporal: train on all five sites 2017-2019, test on each in 2020.
A daily site is scored per day (and per month: months with >= 20 observed days, means over
those days); a monthly site per month (months whose every day has a window: the mean of
the daily predictions against the tower's monthly mean). Models: NIRv-linear and
NIRv x radiation-linear (least squares, monthly rows as month means, each site weighted
equally), the previous bundled recipe (BinnedMLP on embeddings), the light-use-efficiency
model (models.train.gpp_lue, bundled) and, with --paper, the paper's transformer.
"""

import argparse
import json
import os
import time

import numpy as np

from ..gpp.footprint import tower_windows
from ..gpp.metrics import gpp_metrics
from ..gpp.series import WINDOW_DAYS, day_numbers
from ..gpp.towers import SCREEN_RULE, read_gpp
from ..sample_data import sample_data_dir

# footprint table, GPP file, latitude (tower coordinates from the data README)
SITES = {
    "DE-HoH": ("DE-HoH_HohesHolz_S2_footprint_raw_2017-2024.csv", "derived_daily_gpp_DE-HoH.csv", 52.09),
    "FR-Fon": ("FR-Fon_FontainebleauBarbeau_S2_footprint_raw_2017-2023.csv", "derived_daily_gpp_FR-Fon.csv", 48.48),
    "FI-Hyy": ("FI-Hyy_Hyytiala_S2_footprint_raw_2017-2024.csv", "derived_daily_gpp_FI-Hyy.csv", 61.85),
    "DE-Kli": ("DE-Kli_Klingenberg_S2_footprint_raw_2017-2024.csv",
               "FLX_DE-Kli_FLUXNET2015_FULLSET_MM_2004-2020_beta-3.csv", 50.8931),
    "IT-Tor": ("IT-Tor_Torgnon_S2_footprint_raw_2017-2024.csv",
               "FLX_IT-Tor_FLUXNET2015_FULLSET_MM_2008-2020_beta-3.csv", 45.8444),
}
YEARS = (2017, 2020)
MIN_DAYS_FOR_MONTH = 20
MODEL_NAMES = ("nirv_linear", "nirv_radiation_linear", "embedding_mlp", "lue", "embedding_transformer")


def towers_dir():
    return os.path.join(sample_data_dir(), "towers")


def _year(days):
    import datetime

    return np.asarray([datetime.date.fromordinal(int(d)).year for d in days])


def _month_key(days):
    import datetime

    return np.asarray([(lambda d: d.year * 100 + d.month)(datetime.date.fromordinal(int(d))) for d in days])


def site_samples(models, site, folder=None, years=YEARS):
    """A site's windows and its scored targets (daily days or monthly months)."""
    folder = folder or towers_dir()
    footprint, gpp_file, latitude = SITES[site]
    w = tower_windows(models, os.path.join(folder, footprint), latitude, years)
    gpp = read_gpp(os.path.join(folder, gpp_file))
    observed = dict(zip(day_numbers(gpp.dates).tolist(), gpp.gpp.tolist()))
    w.update(site=site, latitude=latitude, resolution=gpp.resolution)
    if gpp.resolution == "daily":
        keep = np.asarray([d in observed for d in w["days"]])
        w["target_rows"] = np.flatnonzero(keep)
        w["y"] = np.asarray([observed[d] for d in w["days"][keep]])
        return w
    keys = _month_key(w["days"])
    months, rows = [], []
    import calendar
    import datetime

    for d, value in zip(gpp.dates, gpp.gpp):
        if not years[0] <= d.year <= years[1]:
            continue
        r = np.flatnonzero(keys == d.year * 100 + d.month)
        if len(r) == calendar.monthrange(d.year, d.month)[1]:
            months.append((datetime.date(d.year, d.month, 1).toordinal(), value))
            rows.append(r)
    w["month_days"] = np.asarray([m for m, _ in months], np.int64)
    w["y"] = np.asarray([v for _, v in months])
    w["month_rows"] = rows
    return w


def part(sample, years=YEARS):
    """A training part of one site (gpp_lue.fit_on_parts) restricted to the years."""
    if sample["resolution"] == "daily":
        rows = sample["target_rows"]
        keep = np.isin(_year(sample["days"][rows]), np.arange(years[0], years[1] + 1))
        rows = rows[keep]
        return {"x": sample["x"][rows], "ra": sample["ra"][rows], "nirv": sample["nirv"][rows],
                "y": sample["y"][keep], "resolution": "daily", "site": sample["site"]}
    keep = [k for k, d in enumerate(sample["month_days"]) if years[0] <= _year([d])[0] <= years[1]]
    rows = [sample["month_rows"][k] for k in keep]
    month_days = sample["month_days"][keep]
    flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    month = np.concatenate([np.full(len(r), j) for j, r in enumerate(rows)]) if rows else np.zeros(0, np.int64)
    return {"x": sample["x"][flat], "ra": sample["ra"][flat], "nirv": sample["nirv"][flat],
            "y": sample["y"][keep], "month": month, "resolution": "monthly", "site": sample["site"],
            "month_days": month_days}


def linear_parts_fit(parts, feature):
    """Weighted least squares y = a f + b, f = feature(part) per day; monthly rows as month means."""
    rows = []
    for p in parts:
        f = feature(p)
        if p["resolution"] == "monthly":
            f = np.bincount(p["month"], f, len(p["y"])) / np.bincount(p["month"], minlength=len(p["y"]))
        rows.append((f, p["y"], np.full(len(f), 1.0 / max(1, len(f)))))
    f, y, w = (np.concatenate(c) for c in zip(*rows))
    a, b = np.polyfit(f, y, 1, w=np.sqrt(w))
    return float(a), float(b)


FEATURES = {"nirv_linear": lambda p: p["nirv"], "nirv_radiation_linear": lambda p: p["nirv"] * p["ra"]}


def fit_model(name, parts, threads=1):
    """Train `name` on training parts -> predict(part) giving daily GPP of the part's windows."""
    from . import gpp_lue, gpp_small

    if name in FEATURES:
        a, b = linear_parts_fit(parts, FEATURES[name])
        return lambda p: a * FEATURES[name](p) + b
    if name == "lue":
        model = gpp_lue.fit_lue(parts, threads=threads)
        return lambda p: gpp_lue.predict_lue(model, p["x"], p["ra"])[0]
    spec = gpp_small.PAPER if name == "embedding_transformer" else gpp_small.SMALL
    flat = np.concatenate([p["x"].reshape(-1, p["x"].shape[-1]) for p in parts])
    model = gpp_small.Standardised(gpp_small.build(spec, flat.shape[1]), flat.mean(0), flat.std(0) + 1e-6)
    gpp_lue.fit_on_parts(model, lambda m, x, ra: m(x), parts, spec, threads=threads)
    return lambda p: gpp_small.predict(model, p["x"])


def score(test, predicted):
    """Daily and monthly metrics of one site part; monthly sites only monthly."""
    out = {"resolution": test["resolution"]}
    if test["resolution"] == "daily":
        out["daily"] = gpp_metrics(test["y"], predicted)
        keys = _month_key(test["days"])
        months = [k for k in np.unique(keys) if (keys == k).sum() >= MIN_DAYS_FOR_MONTH]
        obs = [test["y"][keys == k].mean() for k in months]
        pred = [predicted[keys == k].mean() for k in months]
    else:
        n = np.bincount(test["month"], minlength=len(test["y"]))
        obs, pred = test["y"], np.bincount(test["month"], predicted, len(test["y"])) / n
        months = _month_key(test["month_days"])
    out["monthly"] = gpp_metrics(obs, pred)
    out["monthly_pairs"] = [[int(k), float(o), float(p)] for k, o, p in zip(months, obs, pred)]
    return out


def test_part(sample, years):
    p = part(sample, years)
    if sample["resolution"] == "daily":
        rows = sample["target_rows"][np.isin(_year(sample["days"][sample["target_rows"]]),
                                             np.arange(years[0], years[1] + 1))]
        p["days"] = sample["days"][rows]
    return p


def splits(samples):
    """(split, held-out site or None, training parts, [(test site, test part)])."""
    sites = list(samples)
    out = [("loso", s, [part(samples[o]) for o in sites if o != s], [(s, test_part(samples[s], YEARS))])
           for s in sites]
    out.append(("temporal", None, [part(samples[s], (2017, 2019)) for s in sites],
                [(s, test_part(samples[s], (2020, 2020))) for s in sites]))
    return out


def headline(row):
    """The metric a site is judged by: daily for daily towers, monthly for monthly ones."""
    return row["scores"]["daily" if row["scores"]["resolution"] == "daily" else "monthly"]


def markdown_table(results, model_names):
    lines = ["| split | site | model | scored | n | RMSE | R2 | bias | r | monthly R2 | monthly bias |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results:
        if row["model"] not in model_names:
            continue
        m, mm = headline(row), row["scores"]["monthly"]
        lines.append(f"| {row['split']} | {row['site']} | {row['model']} | {row['scores']['resolution']} | "
                     f"{m['n']} | {m['rmse']:.2f} | {m['r2']:.2f} | {m['bias']:+.2f} | {m['r']:.2f} | "
                     f"{mm['r2']:.2f} | {mm['bias']:+.2f} |")
    return "\n".join(lines)


AOA_STRIDE = 10  # AOA training samples: every 10th day of the training windows (the paper's stride)


def fit_bundled_aoa(model, parts):
    """The AOA of a trained LUE model from its training parts, folds = towers."""
    from ..gpp.aoa import fit_aoa
    from . import gpp_lue

    x = np.concatenate([p["x"][::AOA_STRIDE] for p in parts])
    ra = np.concatenate([p["ra"][::AOA_STRIDE] for p in parts])
    folds = np.concatenate([np.full(len(p["x"][::AOA_STRIDE]), k) for k, p in enumerate(parts)])
    _, features = gpp_lue.predict_lue(model, x, ra)
    importance = gpp_lue.aoa_importance(model, x, ra)
    return fit_aoa(features, folds, importance)


def embedding_model_digests(models_dir=None):
    """sha256 of the embedding model files the GPP model was trained with (detects a stale GPP model)."""
    from ..manifest import MODELS_DIR, sha256_of
    from ..runtime import MODEL_FILES, OPTIONAL_ROLES

    folder = models_dir or MODELS_DIR
    # The embeddings come from the frame, temporal and fusion models only: the window reference
    # and the reconstruction model may be exported again without making a GPP model stale.
    skip = {"window_reference", *OPTIONAL_ROLES}
    return {name: sha256_of(os.path.join(folder, name)) for role, name in sorted(MODEL_FILES.items())
            if role not in skip and os.path.isfile(os.path.join(folder, name))}


def export_bundled(samples, models, out_dir, models_dir=None, threads=1):
    """Train the bundled LUE model on all sites 2017-2020, with its AOA; export it + SHA256SUMS."""
    from ..gpp.model import GPP_MODEL_FILE
    from ..manifest import read_manifest, write_manifest
    from . import gpp_lue

    parts = [part(samples[s]) for s in samples]
    model = gpp_lue.fit_lue(parts, threads=threads)
    aoa = fit_bundled_aoa(model, parts)
    path = os.path.join(out_dir, GPP_MODEL_FILE)
    meta = {"cameo_model_name": "cameo-gpp-lue", "cameo_model_version": "2.1.1",
            "cameo_embedding_model_name": models.name, "cameo_embedding_model_version": models.version,
            "cameo_embedding_models_sha256": json.dumps(embedding_model_digests(models_dir)),
            "cameo_max_gap_days": str(WINDOW_DAYS), "cameo_architecture": json.dumps(gpp_lue.LUE),
            "cameo_macs_per_window": str(gpp_lue.macs_per_window(gpp_lue.LUE)),
            "cameo_interpolation": "daily linear interpolation between valid embedding dates; gaps over "
                                   "cameo_max_gap_days and days outside the series have no value",
            "cameo_training_sites": ",".join(samples),
            "cameo_training_data": (f"footprint-mean Sentinel-2 (screen: {SCREEN_RULE}) as homogeneous "
                                    "windows, no Sentinel-1; GPP_NT_VUT_REF (ICOS Warm Winter 2020; daily "
                                    "quality >= 0.75, monthly >= 0.75) "
                                    f"{YEARS[0]}-{YEARS[1]}: " + ", ".join(
                                        f"{s} {samples[s]['resolution']} {len(p['y'])}"
                                        for s, p in zip(samples, parts))),
            "cameo_evaluation": "models/README.md (GPP section)", **aoa.to_metadata()}
    gpp_lue.export_lue_onnx(model, path, models.output_names, meta)
    write_manifest(out_dir, sorted(set(read_manifest(out_dir)) | {GPP_MODEL_FILE}))
    return path, model, aoa


def run_splits(samples, names, threads=1):
    """Every model in every split: (result rows, stored predictions)."""
    results, store = [], {}
    for split, held, train, tests in splits(samples):
        t0 = time.time()
        for name in names:
            predict = fit_model(name, train, threads)
            for site, test in tests:
                predicted = np.asarray(predict(test), np.float64)
                results.append({"split": split, "site": site, "model": name, "scores": score(test, predicted)})
                store[f"{split}/{site}/{name}"] = predicted.astype(np.float32)
        for site, test in tests:
            store[f"{split}/{site}/y"] = test["y"]
            store[f"{split}/{site}/days"] = test.get("days", np.zeros(0))
        print(f"split {split}{' ' + held if held else ''}: {time.time() - t0:.0f} s", flush=True)
    return results, store


FIGURE_MODELS = {"lue": ("C0", 1.6), "nirv_radiation_linear": ("C3", 1.0), "nirv_linear": ("C1", 0.8),
                 "embedding_mlp": ("0.6", 0.8), "embedding_transformer": ("C2", 0.8)}


def figure(site, results, path):
    """Monthly observed GPP (dots) and each model's monthly predictions (lines), LOSO and 2020."""
    import datetime

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [3, 1]})
    for ax, split in zip(axes, ("loso", "temporal")):
        rows = [r for r in results if r["site"] == site and r["split"] == split]
        for row in rows:
            pairs = row["scores"]["monthly_pairs"]
            x = [datetime.date(k // 100, k % 100, 15) for k, _, _ in pairs]
            colour, width = FIGURE_MODELS.get(row["model"], ("k", 1.0))
            ax.plot(x, [p for _, _, p in pairs], "-", color=colour, lw=width,
                    label=f"{row['model']} (R2 {headline(row)['r2']:.2f})")
        if rows:
            pairs = rows[0]["scores"]["monthly_pairs"]
            ax.plot([datetime.date(k // 100, k % 100, 15) for k, _, _ in pairs], [o for _, o, _ in pairs], "o",
                    color="k", ms=3, label="tower (monthly mean)")
        ax.set_title(f"{site}: {'leave-one-site-out 2017-2020' if split == 'loso' else 'trained 2017-2019, 2020'}",
                     fontsize=9)
        ax.set_ylabel("GPP (g C m-2 d-1)", fontsize=8)
        locator = mdates.AutoDateLocator(maxticks=8)   # the one-year panel got a tick per month, unreadable
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models.train.gpp_experiment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", default=None, help="CAMEO embedding models (default: bundled)")
    parser.add_argument("--out", default="runs/gpp")
    parser.add_argument("--paper", action="store_true", help="also train the paper's transformer regressor")
    parser.add_argument("--export", default=None, help="folder to export cameo_gpp.onnx into (+ SHA256SUMS)")
    parser.add_argument("--figures", default=None, help="folder for the per-site figures (gpp_<SITE>.png)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    from ..runtime import load_models

    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    models = load_models(args.models_dir, threads=args.threads)
    samples = {s: site_samples(models, s) for s in SITES}
    for s, d in samples.items():
        print(f"{s}: {d['rows']} screened rows (dropped {d['dropped']}), {len(d['days'])} days with a complete "
              f"window, {len(d['y'])} {d['resolution']} targets", flush=True)
    names = [n for n in MODEL_NAMES if args.paper or n != "embedding_transformer"]
    results, store = run_splits(samples, names, args.threads)
    table = markdown_table(results, names)
    print(table)
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump({"results": results, "screen": SCREEN_RULE, "models": names,
                   "embedding_model": [models.name, models.version], "seconds": time.time() - started},
                  handle, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write(table + "\n")
    np.savez_compressed(os.path.join(args.out, "predictions.npz"), **store)
    if args.figures:
        os.makedirs(args.figures, exist_ok=True)
        for site in samples:
            figure(site, results, os.path.join(args.figures, f"gpp_{site}.png"))
    if args.export:
        path, _, aoa = export_bundled(samples, models, args.export, args.models_dir, args.threads)
        print(f"exported {path} (AOA threshold {aoa.threshold:.3f}, {len(aoa.train)} training samples)")
    print(f"done in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
