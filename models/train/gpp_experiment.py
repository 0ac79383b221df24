"""GPP on the real flux towers: data, honest splits, baselines, figures, the bundled model.

    python -m models.train.gpp_experiment [--models-dir models/onnx] [--out runs/gpp]
        [--paper] [--export models/onnx] [--figures models/figures]

Data (../shared/data/towers, $CAMEO_DATA): DE-HoH, FR-Fon, FI-Hyy footprint tables
(screened: models.gpp.towers.SCREEN_RULE) and daily GPP_NT_VUT_REF (quality >= 0.75 in
these derived files), years 2017-2020. Each site's screened rows are embedded as
homogeneous windows without Sentinel-1 (models.gpp.footprint), interpolated to daily
values, and every day with tower GPP and a complete 90-day window is a sample.

Splits, the same for every model:
- leave-one-site-out (LOSO): train on the two other sites (2017-2020), test on the third;
- temporal: train on all three sites 2017-2019, test on each site in 2020.
Training samples are taken every 10th day (day number divisible by 10, the paper's
stride); test samples are all days. Models: NIRv linear (NIRv of the target day, least
squares), the bundled BinnedMLP on raw bands (10 reflectances) and on embeddings, and
with --paper the paper's transformer regressor on embeddings. The bundled model is then
trained with the same recipe on all three sites 2017-2020 and exported (--export).
"""

import argparse
import json
import os
import time

import numpy as np

from ..gpp.footprint import embed_footprint
from ..gpp.metrics import gpp_metrics, linear_fit
from ..gpp.series import WINDOW_DAYS, build_windows, day_numbers
from ..gpp.towers import SCREEN_RULE, read_daily_gpp, read_footprint
from ..sample_data import sample_data_dir

SITES = {
    "DE-HoH": "DE-HoH_HohesHolz_S2_footprint_raw_2017-2024.csv",
    "FR-Fon": "FR-Fon_FontainebleauBarbeau_S2_footprint_raw_2017-2023.csv",
    "FI-Hyy": "FI-Hyy_Hyytiala_S2_footprint_raw_2017-2024.csv",
}
YEARS = (2017, 2020)
TRAIN_STRIDE = 10
MODEL_NAMES = ("nirv_linear", "bands_mlp", "embedding_mlp", "embedding_transformer")


def towers_dir():
    return os.path.join(sample_data_dir(), "towers")


def same_day_nirv_r(fp, gpp, years=YEARS):
    """Pearson r of NIRv and GPP on same-day pairs (screened rows) in the years."""
    g = gpp.as_dict()
    pairs = [(v, g[d]) for d, v in zip(fp.dates, fp.nirv) if d in g and years[0] <= d.year <= years[1]]
    a = np.asarray(pairs)
    return len(a), float(np.corrcoef(a[:, 0], a[:, 1])[0, 1])


def site_samples(models, site, folder=None, years=YEARS):
    """Samples of one site: days, GPP y, embedding windows, band windows, NIRv of the target day."""
    folder = folder or towers_dir()
    fp = read_footprint(os.path.join(folder, SITES[site]))
    gpp = read_daily_gpp(os.path.join(folder, f"derived_daily_gpp_{site}.csv"))
    emb = embed_footprint(models, fp.dates, fp.values)
    obs = day_numbers(fp.dates)
    keep = [i for i, d in enumerate(gpp.dates) if years[0] <= d.year <= years[1]]
    days = day_numbers([gpp.dates[i] for i in keep])
    y = gpp.gpp[keep]
    xe, kept = build_windows(obs, emb, days)
    xb, kept_b = build_windows(obs, fp.values, days)
    xn, kept_n = build_windows(obs, fp.nirv[:, None], days)
    assert np.array_equal(kept, kept_b) and np.array_equal(kept, kept_n)
    n, r = same_day_nirv_r(fp, gpp, years)
    return {"site": site, "days": days[kept], "y": y[kept], "x_embedding": xe.astype(np.float32),
            "x_bands": xb.astype(np.float32), "nirv": xn[:, -1, 0], "embeddings": emb, "obs_days": obs,
            "same_day_pairs": n, "same_day_nirv_r": r, "rows": len(fp.dates), "dropped": fp.dropped}


def _select(samples, sites, years, stride=None):
    parts = []
    for s in sites:
        d = samples[s]
        yr = np.asarray([np.datetime64("0001-01-01") + np.timedelta64(int(v) - 1, "D") for v in d["days"]],
                        "datetime64[Y]").astype(int) + 1970
        m = (yr >= years[0]) & (yr <= years[1])
        if stride:
            m &= d["days"] % stride == 0
        parts.append({k: d[k][m] for k in ("days", "y", "x_embedding", "x_bands", "nirv")})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def splits(samples):
    """(split name, train selection, [(test site, test selection)])."""
    sites = list(samples)
    out = []
    for s in sites:
        out.append((f"loso", s, _select(samples, [o for o in sites if o != s], YEARS, TRAIN_STRIDE),
                    [(s, _select(samples, [s], YEARS))]))
    out.append(("temporal", None, _select(samples, sites, (2017, 2019), TRAIN_STRIDE),
                [(s, _select(samples, [s], (2020, 2020))) for s in sites]))
    return out


def run_models(train, test_sets, model_names, threads=1):
    from . import gpp_small

    preds = {name: [] for name in model_names}
    for name in model_names:
        if name == "nirv_linear":
            a, b = linear_fit(train["nirv"], train["y"])
            preds[name] = [a * t["nirv"] + b for _, t in test_sets]
            continue
        spec = gpp_small.PAPER if name == "embedding_transformer" else gpp_small.SMALL
        key = "x_bands" if name == "bands_mlp" else "x_embedding"
        model = gpp_small.fit(spec, train[key], train["y"], threads=threads)
        preds[name] = [gpp_small.predict(model, t[key]) for _, t in test_sets]
    return preds


def markdown_table(results, model_names):
    lines = ["| split | site | model | n | RMSE | NRMSE | R2 | bias | r |", "|---|---|---|---|---|---|---|---|---|"]
    for row in results:
        if row["model"] not in model_names:
            continue
        m = row["metrics"]
        lines.append(f"| {row['split']} | {row['site']} | {row['model']} | {m['n']} | {m['rmse']:.2f} | "
                     f"{m['nrmse']:.3f} | {m['r2']:.2f} | {m['bias']:+.2f} | {m['r']:.2f} |")
    return "\n".join(lines)


def figure(site, panels, path):
    """Observed daily GPP as dots, predictions as lines; one panel per split."""
    import datetime

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), squeeze=False)
    styles = {"embedding_mlp": ("C0", 1.4), "embedding_transformer": ("C2", 1.0), "bands_mlp": ("C1", 0.9),
              "nirv_linear": ("C3", 0.9)}
    for ax, (title, days, y, preds) in zip(axes[:, 0], panels):
        x = [datetime.date.fromordinal(int(d)) for d in days]
        ax.plot(x, y, ".", color="0.35", markersize=2.5, label="tower GPP (daily)")
        for name, p in preds.items():
            c, lw = styles.get(name, ("k", 1.0))
            # break lines across gaps of more than 5 days
            p = np.asarray(p, float).copy()
            gap = np.r_[False, np.diff(days) > 5]
            xs, ps = [], []
            for xi, pi, gi in zip(x, p, gap):
                if gi:
                    xs.append(xi)
                    ps.append(np.nan)
                xs.append(xi)
                ps.append(pi)
            ax.plot(xs, ps, "-", color=c, lw=lw, label=name)
        ax.set_title(f"{site}: {title}", fontsize=9)
        ax.set_ylabel("GPP (g C m-2 d-1)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, ncol=5, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def args_models_dir(models):
    return getattr(models, "models_dir", None)


def embedding_model_digests(models_dir=None):
    """sha256 of the embedding model files the GPP model was trained with (detects a stale GPP model)."""
    from ..manifest import MODELS_DIR, sha256_of
    from ..runtime import MODEL_FILES

    folder = models_dir or MODELS_DIR
    return {name: sha256_of(os.path.join(folder, name)) for name in sorted(MODEL_FILES.values())
            if name != MODEL_FILES["window_reference"] and os.path.isfile(os.path.join(folder, name))}


def export_bundled(samples, models, out_dir, threads=1):
    """Train the bundled GPP model on all sites 2017-2020 and export it + update SHA256SUMS."""
    from ..manifest import read_manifest, write_manifest
    from ..gpp.model import GPP_MODEL_FILE
    from . import gpp_small

    train = _select(samples, list(samples), YEARS, TRAIN_STRIDE)
    model = gpp_small.fit(gpp_small.SMALL, train["x_embedding"], train["y"], threads=threads)
    path = os.path.join(out_dir, GPP_MODEL_FILE)
    meta = {"cameo_model_name": "cameo-gpp-small", "cameo_model_version": "1.0.0",
            "cameo_embedding_model_name": models.name, "cameo_embedding_model_version": models.version,
            "cameo_embedding_models_sha256": json.dumps(embedding_model_digests(args_models_dir(models))),
            "cameo_max_gap_days": str(WINDOW_DAYS),
            "cameo_architecture": json.dumps(gpp_small.SMALL),
            "cameo_macs_per_window": str(gpp_small.macs_per_window(gpp_small.SMALL)),
            "cameo_interpolation": "daily linear interpolation between valid embedding dates; gaps over "
                                   "cameo_max_gap_days and days outside the series have no value",
            "cameo_training_sites": ",".join(samples),
            "cameo_training_data": (f"footprint-mean Sentinel-2 (screen: {SCREEN_RULE}) as homogeneous "
                                    "windows, no Sentinel-1; GPP_NT_VUT_REF (ICOS Warm Winter 2020, "
                                    f"quality >= 0.75) {YEARS[0]}-{YEARS[1]}, every {TRAIN_STRIDE}th day, "
                                    f"{len(train['y'])} windows"),
            "cameo_evaluation": "models/README.md (GPP section)"}
    gpp_small.export_onnx(model, path, WINDOW_DAYS, models.output_names, meta)
    names = set(read_manifest(out_dir)) | {GPP_MODEL_FILE}
    write_manifest(out_dir, sorted(names))
    return path, model, train


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models.train.gpp_experiment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", default=None, help="CAMEO embedding models (default: bundled)")
    parser.add_argument("--out", default="runs/gpp")
    parser.add_argument("--paper", action="store_true", help="also train the paper's transformer regressor")
    parser.add_argument("--export", default=None, help="folder to export cameo_gpp.onnx into (+ SHA256SUMS)")
    parser.add_argument("--figures", default=None, help="folder for the per-site figures")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    from ..runtime import load_models

    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    models = load_models(args.models_dir, threads=args.threads)
    models.models_dir = args.models_dir
    samples = {s: site_samples(models, s) for s in SITES}
    for s, d in samples.items():
        print(f"{s}: {d['rows']} screened rows (dropped {d['dropped']}), {len(d['y'])} samples with a complete "
              f"window; same-day NIRv r = {d['same_day_nirv_r']:.3f} on {d['same_day_pairs']} pairs", flush=True)
    names = [n for n in MODEL_NAMES if args.paper or n != "embedding_transformer"]
    results, store = [], {}
    for split, held, train, tests in splits(samples):
        t0 = time.time()
        preds = run_models(train, tests, names, threads=args.threads)
        for k, (site, test) in enumerate(tests):
            for name in names:
                m = gpp_metrics(test["y"], preds[name][k])
                results.append({"split": split, "site": site, "model": name, "metrics": m,
                                "train_windows": int(len(train["y"])), "test_windows": int(len(test["y"]))})
                store[f"{split}/{site}/{name}"] = np.asarray(preds[name][k], np.float32)
            store[f"{split}/{site}/days"] = test["days"]
            store[f"{split}/{site}/y"] = test["y"]
        print(f"split {split}{' ' + held if held else ''}: {len(train['y'])} training windows, "
              f"{time.time() - t0:.0f} s", flush=True)
    table = markdown_table(results, names)
    print(table)
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump({"results": results, "same_day_nirv": {s: {"pairs": d["same_day_pairs"],
                                                              "r": d["same_day_nirv_r"]}
                                                          for s, d in samples.items()},
                   "screen": SCREEN_RULE, "models": names, "embedding_model": [models.name, models.version],
                   "seconds": time.time() - started}, handle, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write(table + "\n")
    np.savez_compressed(os.path.join(args.out, "predictions.npz"), **store)
    if args.figures:
        os.makedirs(args.figures, exist_ok=True)
        for s in samples:
            panels = []
            for split, title in (("loso", "leave-one-site-out, 2017-2020"), ("temporal", "trained 2017-2019, test 2020")):
                panels.append((title, store[f"{split}/{s}/days"], store[f"{split}/{s}/y"],
                               {n: store[f"{split}/{s}/{n}"] for n in names}))
            figure(s, panels, os.path.join(args.figures, f"gpp_{s}.png"))
    if args.export:
        path, _, train = export_bundled(samples, models, args.export, threads=args.threads)
        print(f"exported {path} ({len(train['y'])} training windows)")
    print(f"done in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
