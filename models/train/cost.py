"""Count multiply-accumulates (MACs) of exported ONNX graphs, from the graphs themselves.

Every Conv / ConvTranspose / MatMul / Gemm node's input and output shapes are taken from
a real ONNX Runtime run on concrete inputs (all intermediate tensors exposed as outputs),
so the count reflects exactly what the exported graph computes. Elementwise work
(attention dot products written as Mul + ReduceSum, activations) is reported apart as
element operations. FLOP = 2 x MAC.
"""

import numpy as np


def _run_with_shapes(path, feeds):
    import onnx
    import onnxruntime

    model = onnx.load(path)
    wanted = set()
    for node in model.graph.node:
        wanted.update(n for n in list(node.input) + list(node.output) if n)
    initializers = {i.name: tuple(i.dims) for i in model.graph.initializer}
    existing = {o.name for o in model.graph.output} | {i.name for i in model.graph.input}
    for name in sorted(wanted - set(initializers) - existing):
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, feeds)
    shapes = dict(initializers)
    shapes.update({n: tuple(np.shape(v)) for n, v in zip(names, values)})
    shapes.update({k: tuple(np.shape(v)) for k, v in feeds.items()})
    return model, shapes


def count_macs(path, feeds):
    """{"macs": Conv/MatMul/Gemm MACs, "elementwise": element ops of other nodes, "by_op": {...}}."""
    model, shapes = _run_with_shapes(path, feeds)
    by_op, elementwise = {}, 0
    for node in model.graph.node:
        op = node.op_type
        out = shapes.get(node.output[0], ())
        if op in ("Conv", "ConvTranspose"):
            w = shapes[node.input[1]]
            if op == "Conv":
                macs = int(np.prod(out)) * int(np.prod(w[1:]))
            else:  # every input element meets every kernel tap of its group
                macs = int(np.prod(shapes[node.input[0]])) * int(np.prod(w[1:]))
        elif op == "MatMul":
            a = shapes[node.input[0]]
            macs = int(np.prod(out)) * int(a[-1])
        elif op == "Gemm":
            a = shapes[node.input[0]]
            trans_a = any(att.name == "transA" and att.i for att in node.attribute)
            macs = int(np.prod(out)) * int(a[0] if trans_a else a[-1])
        else:
            if op in ("Mul", "Add", "Sub", "Div", "Exp", "Erf", "Sigmoid", "Softplus", "ReduceSum", "ReduceMean",
                      "Softmax", "MaxPool", "AveragePool", "Sqrt", "Pow", "ReduceMax", "Where", "Log1p", "Log"):
                if op in ("ReduceSum", "ReduceMean", "ReduceMax", "MaxPool", "AveragePool"):
                    elementwise += int(np.prod(shapes.get(node.input[0], ())))
                else:
                    elementwise += int(np.prod(out))
            continue
        by_op[op] = by_op.get(op, 0) + macs
    return {"macs": sum(by_op.values()), "elementwise": elementwise, "by_op": by_op}


def dense_cost_per_pixel_date(models_dir, side=32, frames=11):
    """MACs per pixel-date of the dense path (S2 + S1 frame, temporal, fusion) from the graphs.

    Each frame model is run once per date (its features are shared by the windows of all
    dates), so its per-pixel cost counts once per pixel-date.
    """
    import json
    import os

    import onnxruntime

    from ..runtime import MODEL_FILES

    def meta(role):
        s = onnxruntime.InferenceSession(os.path.join(models_dir, MODEL_FILES[role]),
                                         providers=["CPUExecutionProvider"])
        return dict(s.get_modelmeta().custom_metadata_map)

    pixels = side * side
    result, total, total_el = {}, 0, 0
    latents = {}
    for mod in ("s2", "s1"):
        m = meta(f"{mod}_frame")
        bands, halo = len(json.loads(m["cameo_bands"])), int(m["cameo_halo"])
        latents[mod] = int(m["cameo_latent_dim"])
        rng = np.random.default_rng(0)
        x = rng.normal(size=(1, bands + 1, side + 2 * halo, side + 2 * halo)).astype(np.float32)
        c = count_macs(os.path.join(models_dir, MODEL_FILES[f"{mod}_frame"]), {"frames": x})
        d, layers = int(m["cameo_token_dim"]), int(m["cameo_temporal_layers"])
        feeds = {"query": rng.normal(size=(d, pixels)).astype(np.float32),     # channel-major (layout 3)
                 "frame_valid": np.ones((frames, pixels), np.float32),
                 "offsets": np.arange(-5, 6, dtype=np.float32) * 5}
        for layer in range(layers):
            for kind in ("key", "value"):
                feeds[f"{kind}_{layer}"] = rng.normal(size=(frames, d, pixels)).astype(np.float32)
        t = count_macs(os.path.join(models_dir, MODEL_FILES[f"{mod}_temporal"]), feeds)
        result[f"{mod}_frame"] = c["macs"] / pixels
        result[f"{mod}_temporal"] = t["macs"] / pixels
        total += (c["macs"] + t["macs"]) / pixels
        total_el += (c["elementwise"] + t["elementwise"]) / pixels
    feeds = {"s2_latent": np.ones((latents["s2"], pixels), np.float32),
             "s1_latent": np.ones((latents["s1"], pixels), np.float32),
             "s1_gap_days": np.ones(1, np.float32), "s1_present": np.ones(pixels, np.float32)}
    f = count_macs(os.path.join(models_dir, MODEL_FILES["fusion"]), feeds)
    result["fusion"] = f["macs"] / pixels
    total += f["macs"] / pixels
    total_el += f["elementwise"] / pixels
    result["total_macs"] = total
    result["total_mflop"] = 2 * total / 1e6
    result["elementwise_ops"] = total_el
    return result


def window_cost_per_sample(models_dir, frames=11):
    """MACs of the per-window reference model for one window (S2 + S1 + fusion)."""
    import os

    from ..runtime import MODEL_FILES

    feeds = {"s2_window": np.zeros((1, frames, 11, 15, 15), np.float32),
             "s2_frame_exists": np.ones((1, frames), np.float32),
             "offsets": np.arange(-5, 6, dtype=np.float32)[None], "target_index": np.array([5], np.int64),
             "s1_window": np.zeros((1, frames, 3, 15, 15), np.float32),
             "s1_frame_exists": np.ones((1, frames), np.float32), "s1_gap_days": np.zeros(1, np.float32),
             "s1_present": np.ones(1, np.float32)}
    return count_macs(os.path.join(models_dir, MODEL_FILES["window_reference"]), feeds)
