"""Re-export the per-pixel graphs (temporal encoders, fusion) of an ONNX model folder in the
current layout (export.PIXEL_LAYOUT), with the same weights, read from the files themselves.

    python -m models.train.reexport FOLDER [--out OUT]      # OUT defaults to FOLDER (in place)

For folders exported in an earlier layout (the first, pixel-major; the second, frame-major;
no checkpoints at hand; with
checkpoints, `python -m models.train export` writes the current layout directly). The
weights are recovered from the ONNX initializers: the same module is exported once with
distinct random values in every parameter, and each initializer is matched to the
parameter (as is, transposed, or one row of it) it holds. Frame models, the window
reference keep their graphs (their metadata names the new layout); the new graphs carry
the old metadata (with the new layout entries) and are checked against the old graphs
before anything is written (max abs difference <= TOLERANCE on features from the folder's
own frame models); a GPP model's list of the embedding models' sha256 is updated, and
SHA256SUMS rewritten.
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

from ..manifest import read_manifest, write_manifest
from ..runtime import MODEL_FILES
from .config import default_config
from .export import FUSION_INPUTS, LAYOUT, PIXEL_LAYOUT, export_fusion, export_temporal, temporal_inputs
from .model import DenseFusionV1, DenseFusionV2, DenseTemporalV1, DenseTemporalV2, FusionModel, ModalityAutoencoder
from .spec import FRAMES, MODALITIES

TOLERANCE = 1e-5
PER_PIXEL = ("s2_temporal", "s1_temporal", "fusion")


def _initializers(path):
    """({initializer name: array}, [(op type, [input names])] per node, the model)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    alias = {}  # the exporter feeds a repeated initializer through Identity nodes
    for n in model.graph.node:
        if n.op_type == "Identity" and n.input[0] in values:
            alias[n.output[0]] = n.input[0]
    nodes = [(n.op_type, [alias.get(name, name) for name in n.input]) for n in model.graph.node
             if n.output[0] not in alias]
    return values, nodes, model


def _by_position(values, nodes):
    """{(node index, input slot): initializer name}: where each initializer is consumed (the
    exporter may merge equal initializers, so positions, not names or order, pair two graphs)."""
    return {(i, slot): name for i, (_, inputs) in enumerate(nodes) for slot, name in enumerate(inputs)
            if name in values}


def _opset(model):
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _v1_export(module, kind, path, opset):
    """Export `module` in the first per-pixel layout (as the old export_models did)."""
    if kind == "temporal":
        feat = module.temporal.d * (1 + 2 * module.temporal.layers) + 1
        wrapper = DenseTemporalV1(module)
        args = (torch.zeros(1, 6, feat), torch.zeros(1, 6, FRAMES, feat), torch.ones(1, FRAMES), torch.zeros(1, FRAMES))
        names = ["query", "features", "frame_exists", "offsets"]
    else:
        wrapper = DenseFusionV1(module)
        l2, l1 = module.p2.in_features, module.p1.in_features
        args = (torch.ones(1, 6, l2), torch.ones(1, 6, l1), torch.zeros(1), torch.ones(1, 6))
        names = FUSION_INPUTS
    npx = {0: "batch", 1: "pixels"}
    axes = {n: npx if a.dim() > 2 or n in ("s1_present",) else {0: "batch"} for n, a in zip(names, args)}
    with torch.no_grad():
        torch.onnx.export(wrapper.eval(), args, path, dynamo=False, opset_version=opset, input_names=names,
                          dynamic_axes=axes, do_constant_folding=True)


def _v2_export(module, kind, path, opset):
    """Export `module` in the second per-pixel layout (frame-major, pixel-major), as the
    export of that layout did."""
    if kind == "temporal":
        d, layers = module.temporal.d, module.temporal.layers
        wrapper, names, outputs = DenseTemporalV2(module), temporal_inputs(layers), ["latent"]
        args = (torch.zeros(6, d), torch.ones(FRAMES, 6), torch.zeros(FRAMES)) + tuple(
            torch.zeros(FRAMES, 6, d) for _ in range(2 * layers))
        axes = {"query": {0: "pixels"}, "frame_valid": {1: "pixels"}, **{n: {1: "pixels"} for n in names[3:]}}
    else:
        l2, l1 = module.p2.in_features, module.p1.in_features
        wrapper, names, outputs = DenseFusionV2(module), FUSION_INPUTS, ["embedding"]
        args = (torch.ones(6, l2), torch.ones(6, l1), torch.zeros(1), torch.ones(6))
        axes = {"s2_latent": {0: "pixels"}, "s1_latent": {0: "pixels"}, "s1_present": {0: "pixels"}}
    with torch.no_grad():
        torch.onnx.export(wrapper.eval(), args, path, dynamo=False, opset_version=opset, input_names=names,
                          output_names=outputs, dynamic_axes=axes, do_constant_folding=True)


def _load_v2_temporal(module, path):
    """Set the temporal weights of autoencoder `module` from a layout-2 graph (`_v2_export`):
    its parameters are initializers named after them, except the null slot's, which the
    exporter folded with the head-sum matrix into three initializers per layer ([d, heads]
    key x scale, [heads] bias, [heads, d] value), read in the order the graph uses them. (The probe
    matching of `load_weights` cannot see through those products.)"""
    values, nodes, _ = _initializers(path)
    enc = module.temporal
    state = {name: value.clone() for name, value in module.state_dict().items()}
    for name, value in values.items():
        if name in state:
            state[name] = torch.from_numpy(np.array(value, np.float32))
    # in the order the graph uses them (the exporter shares equal ones between layers)
    folded = [np.array(values[name], np.float32) for _, inputs in nodes for name in inputs
              if name in values and name not in state]
    shapes = [(enc.d, enc.heads), (enc.heads,), (enc.heads, enc.d)] * enc.layers
    if [f.shape for f in folded] != shapes:
        raise ValueError(f"{os.path.basename(path)} is not a layout-2 CAMEO temporal graph of its config")
    channel = np.arange(enc.d)
    for layer in range(enc.layers):
        key, bias, value = folded[3 * layer:3 * layer + 3]
        state["temporal.null_k"][layer] = torch.from_numpy(key[channel, channel // enc.dh] * math.sqrt(enc.dh))
        state["temporal.null_bias"][layer] = torch.from_numpy(bias)
        state["temporal.null_v"][layer] = torch.from_numpy(value[channel // enc.dh, channel])
    module.load_state_dict(state)


def _file_layout(path):
    """The per-pixel layout of an ONNX file ("1" when it names none)."""
    return _metadata(path).get("cameo_pixel_layout", "1")


def _match(value, params):
    """(parameter name, how) such that the parameter, taken `how`, equals `value` exactly."""
    for name, p in params.items():
        if p.shape == value.shape and np.array_equal(p, value):
            return name, None
        if p.ndim == 2 and p.T.shape == value.shape and np.array_equal(p.T, value):
            return name, "T"
        if p.ndim == 2 and p.shape[1:] == value.shape:
            for row in range(p.shape[0]):
                if np.array_equal(p[row], value):
                    return name, row
    raise ValueError("no parameter")


def load_weights(module, kind, path):
    """Set `module`'s parameters from the per-pixel ONNX graph at `path`, of the first or
    second layout."""
    old, old_nodes, model = _initializers(path)
    layout = _file_layout(path)
    if layout == "2" and kind == "temporal":
        _load_v2_temporal(module, path)
        return model
    with tempfile.TemporaryDirectory(prefix="cameo-reexport-") as folder:
        torch.manual_seed(0)
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn_like(p))
        probe = os.path.join(folder, "probe.onnx")
        (_v1_export if layout == "1" else _v2_export)(module, kind, probe, _opset(model))
        fresh, fresh_nodes, _ = _initializers(probe)
    if [op for op, _ in fresh_nodes] != [op for op, _ in old_nodes]:
        raise ValueError(f"{os.path.basename(path)} is not a layout-{layout} CAMEO {kind} graph of its config")
    params = {n: p.detach().numpy().copy() for n, p in module.named_parameters()}
    state = {n: torch.from_numpy(p.copy()) for n, p in params.items()}
    old_at = _by_position(old, old_nodes)
    for position, probe_name in _by_position(fresh, fresh_nodes).items():
        probe_value, value = fresh[probe_name], old[old_at[position]]
        try:
            name, how = _match(probe_value, params)
        except ValueError:
            if np.array_equal(probe_value, value):
                continue  # a constant of the graph (shapes, the head-sum matrix), not a weight
            raise ValueError(f"{os.path.basename(path)} holds a value that is no parameter of its config") from None
        value = torch.from_numpy(np.array(value, np.float32))
        if how == "T":
            state[name] = value.T.contiguous()
        elif how is None:
            state[name] = value
        else:
            state[name][how] = value
    module.load_state_dict(state)
    return model


def _modules(folder):
    """(cfg, {"S2": ae, "S1": ae}, fusion) with the per-pixel weights of the folder's graphs."""
    metas = {role: _metadata(os.path.join(folder, MODEL_FILES[role])) for role in PER_PIXEL}
    cfg = default_config(json.loads(metas["fusion"]["cameo_config"]))
    aes = {}
    for mod in ("S2", "S1"):
        ae = ModalityAutoencoder(len(MODALITIES[mod]["bands"]), cfg[mod.lower()]).eval()
        load_weights(ae, "temporal", os.path.join(folder, MODEL_FILES[f"{mod.lower()}_temporal"]))
        aes[mod] = ae
    fusion = FusionModel(cfg["fusion"], cfg["s2"], cfg["s1"]).fusion.eval()
    load_weights(fusion, "fusion", os.path.join(folder, MODEL_FILES["fusion"]))
    return cfg, aes, fusion, metas


def _metadata(path):
    import onnx

    return {p.key: p.value for p in onnx.load(path).metadata_props}


def _session(path):
    import onnxruntime

    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def _frame_features(folder, role, rng, side=24):
    """Frame features [F, P] of the folder's frame model on random preprocessed frames."""
    session = _session(os.path.join(folder, MODEL_FILES[role]))
    channels = session.get_inputs()[0].shape[1]
    x = rng.standard_normal((1, channels, side + 14, side + 14)).astype(np.float32)
    x[:, -1] = rng.random((side + 14, side + 14)) < 0.8
    x[:, :-1] *= x[:, -1:]
    f = session.run(None, {"frames": x})[0][0]
    return f.reshape(f.shape[0], -1)


def _temporal_run(path, frames, exists, offsets, target, layers, d):
    """Latents [P, L] of the temporal graph at `path` (any layout) on frames [P, K, F]."""
    layout = _file_layout(path)
    if layout == "1":
        return _session(path).run(None, {"query": frames[None, :, target], "features": frames[None],
                                         "frame_exists": exists[None], "offsets": offsets[None]})[0][0]
    pixel_minor = layout != "2"            # layout 3: channel-major, pixels innermost
    feeds = {"query": np.ascontiguousarray(frames[:, target, :d].T if pixel_minor else frames[:, target, :d]),
             "frame_valid": np.ascontiguousarray((frames[:, :, -1] * exists).T), "offsets": offsets}
    for layer in range(layers):
        for j, kind in enumerate(("key", "value")):
            base = d + 2 * d * layer + j * d
            piece = frames[:, :, base:base + d]                                  # [P, K, d]
            feeds[f"{kind}_{layer}"] = np.ascontiguousarray(piece.transpose(1, 2, 0) if pixel_minor
                                                            else piece.transpose(1, 0, 2))
    latent = _session(path).run(None, feeds)[0]
    return latent.T if pixel_minor else latent


def compare_temporal(old_path, new_path, features, layers, d, rng):
    """Max abs difference of the two temporal graphs on frames drawn from `features` [F, P]."""
    pixels = features.shape[1]
    frames = np.stack([features[:, rng.permutation(pixels)].T for _ in range(FRAMES)], axis=1)  # [P, K, F]
    exists = np.ones(FRAMES, np.float32)
    exists[-2:] = 0  # padding frames, as at a short stack
    frames[:, exists == 0] = 0
    offsets = np.sort(rng.uniform(-60, 60, FRAMES)).astype(np.float32)
    offsets[exists == 0] = 0
    target = 4
    offsets -= offsets[target]
    old = _temporal_run(old_path, frames, exists, offsets, target, layers, d)
    new = _temporal_run(new_path, frames, exists, offsets, target, layers, d)
    return float(np.abs(old - new).max()), np.ascontiguousarray(old)


def _fusion_run(path, z2, z1, gap, present):
    """Embeddings [P, E] of the fusion graph at `path` (any layout) on latents [P, L]."""
    layout = _file_layout(path)
    if layout == "1":  # a leading batch axis
        return _session(path).run(None, {"s2_latent": z2[None], "s1_latent": z1[None], "s1_gap_days": gap,
                                         "s1_present": present[None]})[0][0]
    if layout == "2":
        return _session(path).run(None, {"s2_latent": z2, "s1_latent": z1, "s1_gap_days": gap,
                                         "s1_present": present})[0]
    return _session(path).run(None, {"s2_latent": np.ascontiguousarray(z2.T), "s1_latent": np.ascontiguousarray(z1.T),
                                     "s1_gap_days": gap, "s1_present": present})[0].T


def compare_fusion(old_path, new_path, z2, z1, rng):
    pixels = len(z2)
    present = (rng.random(pixels) < 0.7).astype(np.float32)
    diffs = []
    for gap in (0.0, 2.0, 11.0):
        gap = np.asarray([gap], np.float32)
        old = _fusion_run(old_path, z2, z1, gap, present)
        new = _fusion_run(new_path, z2, z1, gap, present)
        diffs.append(float(np.abs(old - new).max()))
    return max(diffs)


def reexport(folder, out=None):
    """Convert the per-pixel graphs of `folder` into `out` (default: in place); returns
    {"converted": bool, "max_abs_diff": {role: float}}. Raises ValueError when a new graph
    differs from its old one by more than TOLERANCE (nothing is written then)."""
    out = out or folder
    metas = {role: _metadata(os.path.join(folder, MODEL_FILES[role])) for role in PER_PIXEL}
    if all(m.get("cameo_pixel_layout") == PIXEL_LAYOUT for m in metas.values()):
        if os.path.abspath(out) != os.path.abspath(folder):
            _copy_folder(folder, out)
        return {"converted": False, "max_abs_diff": {}}
    cfg, aes, fusion, metas = _modules(folder)
    rng = np.random.default_rng(0)
    diffs, latents = {}, {}
    with tempfile.TemporaryDirectory(prefix="cameo-reexport-") as staging:
        for mod, ae in aes.items():
            role = f"{mod.lower()}_temporal"
            meta = dict(metas[role], cameo_layout=LAYOUT, cameo_pixel_layout=PIXEL_LAYOUT)
            old, new = os.path.join(folder, MODEL_FILES[role]), os.path.join(staging, MODEL_FILES[role])
            export_temporal(ae, new, meta, _opset(_initializers(old)[2]))
            features = _frame_features(folder, f"{mod.lower()}_frame", rng)
            diffs[role], latents[mod] = compare_temporal(old, new, features, ae.temporal.layers, ae.temporal.d, rng)
        old, new = os.path.join(folder, MODEL_FILES["fusion"]), os.path.join(staging, MODEL_FILES["fusion"])
        export_fusion(fusion, new, dict(metas["fusion"], cameo_layout=LAYOUT, cameo_pixel_layout=PIXEL_LAYOUT),
                      _opset(_initializers(old)[2]))
        diffs["fusion"] = compare_fusion(old, new, latents["S2"], latents["S1"], rng)
        worst = max(diffs, key=diffs.get)
        if diffs[worst] > TOLERANCE:
            raise ValueError(f"the re-exported {worst} graph differs from the old one by {diffs[worst]:.2e} "
                             f"(> {TOLERANCE:g}); nothing written")
        if os.path.abspath(out) != os.path.abspath(folder):
            _copy_folder(folder, out)
        for role in PER_PIXEL:
            shutil.copyfile(os.path.join(staging, MODEL_FILES[role]), os.path.join(out, MODEL_FILES[role]))
    for role in ("s2_frame", "s1_frame", "window_reference", "s2_reconstruction"):  # same graphs, new layout named
        if os.path.isfile(os.path.join(out, MODEL_FILES[role])):
            _set_metadata(os.path.join(out, MODEL_FILES[role]), cameo_layout=LAYOUT, cameo_pixel_layout=PIXEL_LAYOUT)
    _update_gpp_digests(out, diffs)
    names = [n for n in read_manifest(folder) if os.path.isfile(os.path.join(out, n))]
    write_manifest(out, names)
    return {"converted": True, "max_abs_diff": diffs}


def _set_metadata(path, **entries):
    """Set metadata entries of the ONNX file at `path` (its graph unchanged)."""
    import onnx

    model = onnx.load(path)
    existing = {p.key: p for p in model.metadata_props}
    for key, value in entries.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(model, path)


def _update_gpp_digests(folder, diffs):
    """A GPP model in the folder names the sha256 of the embedding models it was trained on
    (a stale-model check): the re-exported files give the same numbers, so it names them now."""
    from ..gpp.model import GPP_MODEL_FILE
    from .gpp_experiment import embedding_model_digests

    path = os.path.join(folder, GPP_MODEL_FILE)
    if not os.path.isfile(path):
        return
    if "cameo_embedding_models_sha256" not in _metadata(path):
        return
    note = (f"per-pixel graphs re-exported in layout {PIXEL_LAYOUT} by models.train.reexport, same weights; "
            "max abs difference to the graphs it was trained with: "
            + ", ".join(f"{role} {diff:.1e}" for role, diff in sorted(diffs.items())))
    _set_metadata(path, cameo_embedding_models_sha256=json.dumps(embedding_model_digests(folder)),
                  cameo_embedding_models_reexported=note)


def _copy_folder(folder, out):
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(folder):
        if os.path.isfile(os.path.join(folder, name)):
            shutil.copyfile(os.path.join(folder, name), os.path.join(out, name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="folder with the six CAMEO ONNX files and SHA256SUMS")
    parser.add_argument("--out", default=None, help="output folder (default: convert in place)")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.folder, MODEL_FILES["fusion"])):
        print(f"{args.folder} has no {MODEL_FILES['fusion']}: give a folder of CAMEO ONNX models.", file=sys.stderr)
        return 2
    try:
        result = reexport(args.folder, args.out)
    except ValueError as error:
        print(f"Not re-exported: {error}.", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
