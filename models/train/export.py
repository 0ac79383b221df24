"""Export the trained models to ONNX with metadata, a sha256 manifest, and the parity check.

Files (names in models.runtime.MODEL_FILES), all from the same weights:
- cameo_s2_frame.onnx / cameo_s1_frame.onnx: frames [N, C+1, H+14, W+14] -> features [N, F, H, W]
- cameo_s2_temporal.onnx / cameo_s1_temporal.onnx (one chunk of P pixels, one target date,
  frame-major): query [P, d], frame_valid [11, P], offsets [11], key_l / value_l [11, P, d]
  per temporal layer l -> latent [P, L]
- cameo_fusion.onnx: s2_latent [P, 9], s1_latent [P, 2], s1_gap_days [1], s1_present [P]
  -> embedding [P, 7]
- cameo_window_reference.onnx: one 15 x 15 x 11 window per sample -> embedding [N, 7] (the
  per-window reference the dense path must equal)
"""

import json
import os
import time

import numpy as np
import torch

from ..manifest import read_manifest, write_manifest
from ..runtime import MODEL_FILES
from .model import DenseFrame, DenseFusion, DenseTemporal, WindowReference
from .spec import (DATE_WINDOW_RULE, EDGE_RULE, EMBEDDING_NAMES, FRAMES, HALO, MODALITIES,
                   S1_PRESENT_RULE, WINDOW)

METADATA_FORMAT = "1"
# Layout of the per-pixel graphs (temporal, fusion): "2" is frame-major, one chunk and one
# date per call (models.train.model.DenseTemporal / DenseFusion); the first layout had no
# such entry (DenseTemporalV1 / DenseFusionV1, converted by models.train.reexport).
PIXEL_LAYOUT = "2"
LAYOUT = ("frame: frames [N, C+1, H+14, W+14] -> features [N, F, H, W]; temporal (one chunk of P pixels, one "
          "target date, frame-major): query [P, d], frame_valid [11, P], offsets [11], key_l and value_l "
          "[11, P, d] for each temporal layer l -> latent [P, L]; fusion: s2_latent [P, 9], s1_latent [P, 2], "
          "s1_gap_days [1], s1_present [P] -> embedding [P, 7]; F = d + 2 * layers * d + 1: the token, then "
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
    args = (torch.zeros(pixels, d), torch.ones(FRAMES, pixels), torch.zeros(FRAMES)) + tuple(
        torch.zeros(FRAMES, pixels, d) for _ in range(2 * layers))
    axes = {"query": {0: "pixels"}, "frame_valid": {1: "pixels"}, "latent": {0: "pixels"}}
    axes.update({n: {1: "pixels"} for n in names[3:]})
    _export(DenseTemporal(ae), args, path, names, ["latent"], axes, metadata, opset)


FUSION_INPUTS = ["s2_latent", "s1_latent", "s1_gap_days", "s1_present"]


def export_fusion(fusion, path, metadata, opset):
    """The per-pixel fusion graph (layout PIXEL_LAYOUT) with `metadata`."""
    l2, l1 = fusion.p2.in_features, fusion.p1.in_features
    args = (torch.ones(6, l2), torch.ones(6, l1), torch.zeros(1), torch.ones(6))
    axes = {"s2_latent": {0: "pixels"}, "s1_latent": {0: "pixels"}, "s1_present": {0: "pixels"},
            "embedding": {0: "pixels"}}
    _export(DenseFusion(fusion), args, path, FUSION_INPUTS, ["embedding"], axes, metadata, opset)


def export_models(cfg, s2_ae, s1_ae, fusion, stats, out_dir, training_summary="", opset=None):
    """Write the six ONNX files and SHA256SUMS into out_dir; returns the file names."""
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
    # keep the entries of other models in the folder (e.g. issue 6's cameo_gpp.onnx)
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
