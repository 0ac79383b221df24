"""This machine's float32 matrix-multiply rate, measured the way each engine multiplies.

The achieved GFLOP/s of a benchmark is put next to these figures, measured in the same
run: ONNX Runtime's MatMul (the kernels CAMEO runs on), numpy's BLAS and, when installed,
torch's. 2 n^3 FLOP per n x n product, best of `repeats`.
"""

import time

import numpy as np


def _best_rate(multiply, n, repeats):
    multiply()  # warm up (thread pools, packing buffers)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        multiply()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def onnxruntime_matmul_gflops(n=2048, repeats=5):
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    onnx.checker.check_model(model)
    return _best_rate(lambda: session.run(None, {"a": a, "b": a}), n, repeats)


def numpy_matmul_gflops(n=2048, repeats=5):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    return _best_rate(lambda: a @ a, n, repeats)


def torch_matmul_gflops(n=2048, repeats=5):
    import torch

    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0))
    return _best_rate(lambda: a @ a, n, repeats)


def matmul_rates():
    """{engine: GFLOP/s} for the engines installed here."""
    rates = {"onnxruntime": onnxruntime_matmul_gflops(), "numpy": numpy_matmul_gflops()}
    try:
        rates["torch"] = torch_matmul_gflops()
    except ImportError:
        pass
    return {name: round(rate, 1) for name, rate in rates.items()}


if __name__ == "__main__":
    print(matmul_rates())
