"""What runs inside a Dask worker: the per-process model cache and the tile task.

`compute_tile` is submitted by reference (`models.distributed.worker.compute_tile`), so
workers need this checkout importable (`PYTHONPATH=/path/to/checkout dask worker ...`).
"""

import os
import signal
import threading
import time
from dataclasses import dataclass

from distributed.diagnostics.plugin import WorkerPlugin

_MODELS = {}
_LOADS = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class TileJob:
    """Everything a task needs besides its tile (small: sent with every task)."""

    s2: object  # models.stack Stack info (no values)
    s1: object  # or None
    tiles_dir: str
    models_dir: str  # None: the bundled models
    onnx_threads: int
    device: str


class IgnoreInterrupt(WorkerPlugin):
    """Worker plugin for the embedded cluster: Ctrl-C is handled by the client alone.

    A terminal sends SIGINT to the whole process group; the client then saves what it
    has and shuts the cluster down, so the workers need not (and would only print
    tracebacks). Registered on the embedded cluster only, never on someone else's.
    """

    name = "cameo-ignore-interrupt"
    idempotent = True

    def setup(self, worker):  # noqa: ARG002 - WorkerPlugin's signature
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def cached_models(models_dir, onnx_threads, device):
    """The CAMEO models of this worker process, loaded (and verified) on first use only."""
    key = (models_dir, onnx_threads, device)
    with _LOCK:  # several task threads of one worker must not load twice
        if key not in _MODELS:
            from ..embedding.job import execution_providers
            from ..runtime import load_models

            _MODELS[key] = load_models(models_dir, threads=onnx_threads, providers=execution_providers(device))
            _LOADS[key] = _LOADS.get(key, 0) + 1
        return _MODELS[key], _LOADS[key]


def compute_tile(tile, job):
    """Embed one tile and save it atomically; returns a small report (no array)."""
    import rasterio

    from ..embedding.job import embed_one_tile
    from .store import save_tile, tile_path

    started = time.perf_counter()
    report = {"row": tile.row, "col": tile.col, "pid": os.getpid(), "computed": False}
    if os.path.exists(tile_path(job.tiles_dir, tile)):  # a retried task whose tile is already saved
        report.update(seconds=0.0, model_loads=_LOADS.get((job.models_dir, job.onnx_threads, job.device), 0))
        return report
    models, loads = cached_models(job.models_dir, job.onnx_threads, job.device)
    loaded = time.perf_counter()
    with rasterio.open(job.s2.path) as s2_data:
        if job.s1 is not None:
            with rasterio.open(job.s1.path) as s1_data:
                embedding = embed_one_tile(models, tile, job.s2, s2_data, job.s1, s1_data)
        else:
            embedding = embed_one_tile(models, tile, job.s2, s2_data)
    computed = time.perf_counter()
    save_tile(job.tiles_dir, tile, embedding)
    report.update(computed=True, model_loads=loads, seconds=time.perf_counter() - started,
                  compute_seconds=computed - loaded, load_seconds=loaded - started)
    return report
