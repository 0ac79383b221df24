"""Export the trained models to ONNX with metadata, a sha256 manifest, and the parity check.

Files (names in models.runtime.MODEL_FILES), all from the same weights:
- cameo_s2_frame.onnx / cameo_s1_frame.onnx: frames [N, C+1, H+14, W+14] -> features [N, F, H, W]
- cameo_s2_temporal.onnx / cameo_s1_temporal.onnx (one chunk of P pixels, one target date,
  channel-major): query [d, P], frame_valid [11, P], offsets [11], key_l / value_l [11, d, P]
  per temporal layer l -> latent [L, P]
- cameo_fusion.onnx: s2_latent [9, P], s1_latent [2, P], s1_gap_days [1], s1_present [P]
  -> embedding [7, P]
- cameo_window_reference.onnx: one 15 x 15 x 11 window per sample -> embedding [N, 7] (the
  per-window reference the dense path must equal)
"""

import json
import os
import time

import numpy as np
import torch

from ..errors import CameoRunError
from ..manifest import read_manifest, write_manifest
from ..runtime import MODEL_FILES
from ..runtime.specs import PIXEL_LAYOUT  # the layout the dense runtime feeds
from ..stack.speckle import describe as speckle_describe
from .model import CentreReconstruction, DenseFrame, DenseFusion, DenseTemporal, WindowReference
from .spec import (DATE_WINDOW_RULE, EDGE_RULE, EMBEDDING_NAMES, FRAMES, HALO, MODALITIES,
                   S1_PRESENT_RULE, WINDOW)

METADATA_FORMAT = "1"
# Layout of the per-pixel graphs (temporal, fusion; PIXEL_LAYOUT), one chunk and one date per
# call: "3" is channel-major, pixels innermost (models.train.model.DenseTemporal / DenseFusion);
# "2" was frame-major and pixel-major (DenseTemporalV2 / DenseFusionV2); the first layout had
# no such entry (DenseTemporalV1 / DenseFusionV1). models.train.reexport converts both.
LAYOUT = ("frame: frames [N, C+1, H+14, W+14] -> features [N, F, H, W]; temporal (one chunk of P pixels, one "
          "target date, channel-major): query [d, P], frame_valid [11, P], offsets [11], key_l and value_l "
          "[11, d, P] for each temporal layer l -> latent [L, P]; fusion: s2_latent [9, P], s1_latent [2, P], "
          "s1_gap_days [1], s1_present [P] -> embedding [7, P]; F = d + 2 * layers * d + 1: the token, then "
          "key and value of each layer, the last feature channel is the window validity")


def _metadata(cfg, role, modality, stats, extra, training_summary):
    meta = {
        "cameo_metadata_format": METADATA_FORMAT,
        "cameo_model_name": f"cameo-{cfg['name']}",
        "cameo_model_version": str(cfg["version"]),
        "cameo_role": role,
        "cameo_modality": modality,
        "cameo_window": str(WINDOW),
        "cameo_frames": str(FRAMES),
        "cameo_halo": str(HALO),
        "cameo_invalid_fill": "0",
        "cameo_date_window": DATE_WINDOW_RULE,
        "cameo_edge_rule": EDGE_RULE,
        "cameo_s1_present_rule": S1_PRESENT_RULE,
        "cameo_stack_format_version": "1",
        "cameo_embedding_dim": str(len(EMBEDDING_NAMES)),
        "cameo_output_names": json.dumps(EMBEDDING_NAMES),
        "cameo_training_data": training_summary,
        "cameo_layout": LAYOUT,
        "cameo_pixel_layout": PIXEL_LAYOUT,
        "cameo_config": json.dumps(cfg, sort_keys=True),
        "cameo_s1_speckle_filter": speckle_describe(cfg["data"]["s1_speckle_filter"], cfg["data"]["s1_speckle_size"]),
    }
    for mod in ("S2", "S1"):
        spec = MODALITIES[mod]
        meta[f"cameo_{mod.lower()}_spec"] = json.dumps({
            "bands": spec["bands"], "units": spec["units"], "scaling": spec["scaling"],
            "norm_mean": [float(v) for v in stats[mod]["mean"]],
            "norm_std": [float(v) for v in stats[mod]["std"]]})
    if modality in MODALITIES:
        spec = MODALITIES[modality]
        meta.update({
            "cameo_bands": json.dumps(spec["bands"]),
            "cameo_input_units": spec["units"],
            "cameo_scaling": json.dumps(spec["scaling"]),
            "cameo_norm_mean": json.dumps([float(v) for v in stats[modality]["mean"]]),
            "cameo_norm_std": json.dumps([float(v) for v in stats[modality]["std"]]),
        })
    meta.update({k: str(v) for k, v in extra.items()})
    return meta


def _export(module, args, path, input_names, output_names, dynamic_axes, metadata, opset):
    import onnx

    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, path, dynamo=False, opset_version=opset, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)
    model = onnx.load(path)
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "cameo-models-train"
    model.doc_string = metadata.get("cameo_role", "")
    onnx.checker.check_model(model)
    onnx.save(model, path)


def temporal_inputs(layers):
    return ["query", "frame_valid", "offsets"] + [f"{kind}_{layer}" for layer in range(layers)
                                                  for kind in ("key", "value")]


def export_temporal(ae, path, metadata, opset):
    """The per-pixel temporal graph of autoencoder `ae` (layout PIXEL_LAYOUT) with `metadata`."""
    d, layers, pixels = ae.temporal.d, ae.temporal.layers, 6
    names = temporal_inputs(layers)
    args = (torch.zeros(d, pixels), torch.ones(FRAMES, pixels), torch.zeros(FRAMES)) + tuple(
        torch.zeros(FRAMES, d, pixels) for _ in range(2 * layers))
    axes = {"query": {1: "pixels"}, "frame_valid": {1: "pixels"}, "latent": {1: "pixels"}}
    axes.update({n: {2: "pixels"} for n in names[3:]})
    _export(DenseTemporal(ae), args, path, names, ["latent"], axes, metadata, opset)


FUSION_INPUTS = ["s2_latent", "s1_latent", "s1_gap_days", "s1_present"]


def export_fusion(fusion, path, metadata, opset):
    """The per-pixel fusion graph (layout PIXEL_LAYOUT) with `metadata`."""
    l2, l1 = fusion.p2.in_features, fusion.p1.in_features
    args = (torch.ones(l2, 6), torch.ones(l1, 6), torch.zeros(1), torch.ones(6))
    axes = {"s2_latent": {1: "pixels"}, "s1_latent": {1: "pixels"}, "s1_present": {0: "pixels"},
            "embedding": {1: "pixels"}}
    _export(DenseFusion(fusion), args, path, FUSION_INPUTS, ["embedding"], axes, metadata, opset)


def export_models(cfg, s2_ae, s1_ae, fusion, stats, out_dir, training_summary="", opset=None, heads=None):
    """Write the ONNX files and SHA256SUMS into out_dir; returns the file names.

    `heads`: the FusionModel whose S2 head feeds the S2 decoder; with it the centre-pixel
    reconstruction model (`cameo_s2_reconstruction.onnx`) is exported too.
    """
    opset = opset or cfg["export"]["opset"]
    os.makedirs(out_dir, exist_ok=True)
    for m in (s2_ae, s1_ae, fusion):
        m.eval()
    names = []
    nhw = {0: "batch", 2: "height", 3: "width"}
    for mod, ae in (("S2", s2_ae), ("S1", s1_ae)):
        c = len(MODALITIES[mod]["bands"])
        feat = ae.frame.feature_channels
        extra = {"cameo_feature_channels": feat, "cameo_latent_dim": ae.temporal.out2.out_features,
                 "cameo_token_dim": ae.temporal.d, "cameo_temporal_layers": ae.temporal.layers}
        role = f"{mod.lower()}_frame"
        _export(DenseFrame(ae), (torch.zeros(1, c + 1, 2 * HALO + 3, 2 * HALO + 2),),
                os.path.join(out_dir, MODEL_FILES[role]), ["frames"], ["features"],
                {"frames": nhw, "features": nhw},
                _metadata(cfg, "frame", mod, stats, extra, training_summary), opset)
        names.append(MODEL_FILES[role])
        role = f"{mod.lower()}_temporal"
        export_temporal(ae, os.path.join(out_dir, MODEL_FILES[role]),
                        _metadata(cfg, "temporal", mod, stats, extra, training_summary), opset)
        names.append(MODEL_FILES[role])
    l2, l1 = s2_ae.temporal.out2.out_features, s1_ae.temporal.out2.out_features
    export_fusion(fusion, os.path.join(out_dir, MODEL_FILES["fusion"]),
                  _metadata(cfg, "fusion", "S2+S1", stats, {"cameo_s2_latent_dim": l2, "cameo_s1_latent_dim": l1},
                            training_summary), opset)
    names.append(MODEL_FILES["fusion"])
    c2, c1 = len(MODALITIES["S2"]["bands"]) + 1, len(MODALITIES["S1"]["bands"]) + 1
    args = (torch.zeros(2, FRAMES, c2, WINDOW, WINDOW), torch.ones(2, FRAMES), torch.zeros(2, FRAMES),
            torch.tensor([5, 0]), torch.zeros(2, FRAMES, c1, WINDOW, WINDOW), torch.ones(2, FRAMES),
            torch.zeros(2), torch.ones(2))
    inputs = ["s2_window", "s2_frame_exists", "offsets", "target_index", "s1_window", "s1_frame_exists",
              "s1_gap_days", "s1_present"]
    outputs = ["embedding", "s2_latent", "s1_latent"]
    _export(WindowReference(s2_ae, s1_ae, fusion), args, os.path.join(out_dir, MODEL_FILES["window_reference"]),
            inputs, outputs, {n: {0: "batch"} for n in inputs + outputs},
            _metadata(cfg, "window_reference", "S2+S1", stats, {}, training_summary), opset)
    names.append(MODEL_FILES["window_reference"])
    if heads is not None:
        _export(CentreReconstruction(heads, s2_ae, MODALITIES["S2"]["scaling"]), (torch.ones(1, 6, len(EMBEDDING_NAMES)),),
                os.path.join(out_dir, MODEL_FILES["s2_reconstruction"]), ["embedding"], ["reconstruction"],
                {"embedding": {0: "batch", 1: "pixels"}, "reconstruction": {0: "batch", 1: "pixels"}},
                _metadata(cfg, "s2_reconstruction", "S2", stats, {}, training_summary), opset)
        names.append(MODEL_FILES["s2_reconstruction"])
    # keep the entries of other models in the folder (e.g. the GPP model cameo_gpp.onnx)
    others = [n for n in read_manifest(out_dir) if n not in names and os.path.isfile(os.path.join(out_dir, n))]
    write_manifest(out_dir, names + others)
    return names


def torch_window_reference(s2_ae, s1_ae, fusion, feeds):
    """The PyTorch per-window embedding for runtime.window_feeds(...) arrays."""
    ref = WindowReference(s2_ae, s1_ae, fusion).eval()
    order = ["s2_window", "s2_frame_exists", "offsets", "target_index", "s1_window", "s1_frame_exists",
             "s1_gap_days", "s1_present"]
    with torch.no_grad():
        out = ref(*[torch.from_numpy(np.asarray(feeds[k])) for k in order])
    return [o.numpy() for o in out]


def parity_check(models_dir, s2_ae, s1_ae, fusion, s2_values, dates, s2_bands, points, s1_values=None,
                 s1_bands=None, s1_gap_days=None, threads=None):
    """Max abs differences: ONNX window vs torch window, dense ONNX vs ONNX window.

    s2_values [T, C, H, W] raw stack values (NaN invalid), points [(t, y, x)].
    """
    from ..runtime import embed_raster, load_models, window_feeds

    models = load_models(models_dir, threads=threads)
    kw = dict(s2_bands=s2_bands, s1_values=s1_values, s1_bands=s1_bands, s1_gap_days=s1_gap_days)
    start = time.perf_counter()
    dense = embed_raster(models, s2_values, dates, **kw)
    dense_seconds = time.perf_counter() - start
    feeds = window_feeds(models, s2_values, dates, points, **kw)
    onnx_window = models.run("window_reference", feeds)[0]
    torch_window = torch_window_reference(s2_ae, s1_ae, fusion, feeds)[0]
    at_points = np.stack([dense[t, :, y, x] for t, y, x in points])
    return {
        "onnx_vs_torch": float(np.abs(onnx_window - torch_window).max()),
        "dense_vs_window": float(np.abs(at_points - onnx_window).max()),
        "points": len(points),
        "dense_seconds": dense_seconds,
        "dense": dense,
    }


def reconstruction_parity(models_dir, s2_ae, fusion_model, embeddings, points):
    """Max abs difference of the exported centre reconstruction vs the training decoder at `points`.

    embeddings [T, 7, H, W] (dense ONNX output), points [(t, y, x)]."""
    import onnxruntime

    e = np.stack([embeddings[t, :, y, x] for t, y, x in points]).astype(np.float32)
    session = onnxruntime.InferenceSession(os.path.join(models_dir, MODEL_FILES["s2_reconstruction"]),
                                           providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"embedding": e[None]})[0][0]
    s = MODALITIES["S2"]["scaling"]
    with torch.no_grad():
        x = torch.from_numpy(e)
        rec = s2_ae.decoder(fusion_model.to_s2(x), torch.zeros(len(e), 1))[:, 0, :, 7, 7].numpy()
    return float(np.abs(onnx_out - (rec / s["multiply"] - s["add"])).max())


def training_summary(cfg):
    d = cfg["data"]
    return (f"trained on CAMEO stacks of {', '.join(d['train_chips'])} (WorldCereal chips, Sentinel-2 L2A + "
            f"Sentinel-1 GRD ascending, Belgium 2017-2018); validated on {', '.join(d['val_chips'])} "
            f"(another place, 2018-2019); config {cfg['name']} {cfg['version']}")


def run_export(cfg, out_dir, check=True, threads=None):
    """Export a trained run's best checkpoints into out_dir, count their cost and (check) run
    the parity check on the validation chip; writes and returns `<run>/export_report.json`'s
    content. A failed parity check raises CameoRunError."""
    from ..stack import read_stack
    from .checkpoints import load_trained
    from .cost import dense_cost_per_pixel_date, window_cost_per_sample
    from .data import ensure_stacks, speckle_setting

    s2, s1, fm, stats = load_trained(cfg)
    names = export_models(cfg, s2, s1, fm.fusion, stats, out_dir, training_summary(cfg), heads=fm)
    report = {"files": {n: os.path.getsize(os.path.join(out_dir, n)) for n in names}}
    report["cost_dense_per_pixel_date"] = dense_cost_per_pixel_date(out_dir)
    report["cost_window_macs"] = window_cost_per_sample(out_dir)["macs"]
    if check:
        chip = cfg["data"]["val_chips"][0]
        p2, p1 = ensure_stacks(chip, cfg["data"]["stack_dir"], s1_speckle=speckle_setting(cfg))
        a, b = read_stack(p2), read_stack(p1)
        t_n, _, h, w = a.values.shape
        rng = np.random.default_rng(0)
        points = [(0, 0, 0), (t_n - 1, h - 1, w - 1), (1, 0, w - 1), (t_n - 2, h - 1, 0), (2, 3, 60), (t_n - 3, 61, 2)]
        points += [(int(rng.integers(t_n)), int(rng.integers(h)), int(rng.integers(w))) for _ in range(26)]
        r = parity_check(out_dir, s2, s1, fm.fusion, a.values, a.dates, a.bands, points, b.values, b.bands,
                         b.s1_gap_days, threads=threads)
        pixel_dates = t_n * h * w
        report["parity"] = {"chip": chip, "points": len(points), "onnx_vs_torch": r["onnx_vs_torch"],
                            "dense_vs_window": r["dense_vs_window"], "dense_seconds": r["dense_seconds"],
                            "pixel_dates": pixel_dates, "pixel_dates_per_s": pixel_dates / r["dense_seconds"]}
        report["parity"]["reconstruction_onnx_vs_torch"] = reconstruction_parity(out_dir, s2, fm, r["dense"], points)
        if r["onnx_vs_torch"] > 1e-5 or r["dense_vs_window"] > 1e-4 or report["parity"]["reconstruction_onnx_vs_torch"] > 1e-5:
            raise CameoRunError(f"Export check FAILED: {report['parity']}")
    with open(os.path.join(cfg["runs_dir"], cfg["name"], "export_report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    return report
