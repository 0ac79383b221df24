"""One distributed embedding job: plan the tiles, run them as Dask tasks, write the outputs.

The client process is the single writer: it copies each finished tile from the tile
store into the per-date files of an `EmbeddingWriter` (the single-process engine's
writer) as tiles arrive, and publishes them at the end (one COG per date, then
`embeddings.vrt`). Numbers come from `models.embedding.job.embed_one_tile`, the
single-process engine's per-tile function: the outputs are identical to
`embed_stacks` on the same inputs.
"""

import hashlib
import importlib.util
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field


from ..embedding.defaults import DEFAULT_TILE_SIZE, DEVICES
from ..embedding.job import plan_embedding
from ..errors import CameoInputError
from ..manifest import MODELS_DIR, read_manifest
from ..runtime import MODEL_FILES, default_workers, load_models
from ..staging import report_swept
from .errors import DistributedRunError
from .store import TileStore, load_tile, tile_file_name
from .worker import IgnoreInterrupt, TileJob, compute_tile

CONNECT_TIMEOUT_S = 20



@dataclass
class DistributedRun:
    index_path: str
    files: list
    dates: list
    tiles: int
    computed: int  # tiles computed by this run's tasks
    reused: int  # tiles found finished (resume) or saved by an earlier attempt of a task
    seconds: float
    pixel_dates: int
    workers: dict = field(default_factory=dict)  # worker pid -> tiles it computed
    model_loads: dict = field(default_factory=dict)  # worker pid -> times it loaded the models
    compute_seconds: float = 0.0  # sum over computed tiles of the embedding time
    write_seconds: float = 0.0  # time the client spent copying tiles into the per-date files
    publish_seconds: float = 0.0  # converting them to COGs and writing the VRT (after the last tile)
    dashboard: str = ""

    def summary(self):
        return {"index": self.index_path, "files": len(self.files), "tiles": self.tiles,
                "computed": self.computed, "reused": self.reused, "seconds": round(self.seconds, 3),
                "pixel_dates": self.pixel_dates,
                "pixel_dates_per_s": round(self.pixel_dates / self.seconds) if self.seconds > 0 else None,
                "compute_seconds": round(self.compute_seconds, 3),
                "write_seconds": round(self.write_seconds, 3),
                "publish_seconds": round(self.publish_seconds, 3),
                "workers": {str(k): v for k, v in sorted(self.workers.items())},
                "model_loads": {str(k): v for k, v in sorted(self.model_loads.items())},
                "dashboard": self.dashboard}


def _file_identity(path):
    stat = os.stat(path)
    return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _models_identity(models_dir):
    manifest = read_manifest(models_dir or MODELS_DIR)
    entries = {name: manifest.get(name, "") for name in MODEL_FILES.values()}
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def _progress_bar(total, initial, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainBar(total, initial)
    return tqdm(total=total, initial=initial, unit="tile", desc="embedding", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


class _PlainBar:
    """Progress without tqdm: one line per 5 % on stderr."""

    def __init__(self, total, initial):
        self.total, self.n, self._last = total, initial, -1
        self.update(0)

    def update(self, n):
        self.n += n
        step = int(100 * self.n / max(self.total, 1)) // 5
        if step != self._last:
            self._last = step
            print(f"embedding: {self.n}/{self.total} tiles", file=sys.stderr, flush=True)

    def close(self):
        pass


def _connect(scheduler, workers, threads_per_worker, quiet):
    """(client, cluster or None): an embedded LocalCluster on loopback, or an existing scheduler."""
    from distributed import Client, LocalCluster

    level = logging.ERROR if quiet else logging.WARNING
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as error:
            raise CameoInputError(
                f"Cannot reach the Dask scheduler at {scheduler} ({error.__class__.__name__}): start it "
                "(`dask scheduler`), check the address (tcp://host:port), or leave out --scheduler to run "
                "on this machine.") from error
        return client, None
    # Loopback only; port 0: a free port (the scheduler's HTTP server, the dashboard with bokeh).
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                           host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=level)
    try:
        client = Client(cluster)
        client.register_plugin(IgnoreInterrupt())
        return client, cluster
    except BaseException:
        cluster.close()
        raise


def _dashboard_link(client, embedded):
    """The dashboard's address, or "" (an embedded cluster serves it only when bokeh is installed)."""
    if embedded and importlib.util.find_spec("bokeh") is None:
        return ""
    try:
        if "dashboard" in client.scheduler_info().get("services", {}):
            return client.dashboard_link
    except Exception:  # noqa: BLE001 - a missing dashboard is not an error
        pass
    return ""


def _check_workers_see(client, paths, folder):
    """Workers of an existing cluster must see the stacks and the output folder (shared disk)."""
    for path in paths:
        seen = client.run(os.path.isfile, path)
        blind = sorted(address for address, ok in seen.items() if not ok)
        if blind:
            raise CameoInputError(
                f"Dask worker(s) {', '.join(blind)} cannot read {path}: put the stacks and the output "
                "folder on a disk that every worker mounts at the same path.")
    if not client.scheduler_info().get("workers"):
        raise CameoInputError("The Dask cluster has no workers: start some (`dask worker tcp://...`).")
    writable = client.run(os.access, folder, os.W_OK)
    blind = sorted(address for address, ok in writable.items() if not ok)
    if blind:
        raise CameoInputError(
            f"Dask worker(s) {', '.join(blind)} cannot write into {folder}: use an output folder on a disk "
            "that every worker mounts (writable) at the same path.")


def embed_distributed(s2_path: str, output_folder: str, *, s1_path: str = None, bounds: tuple = None,
                      tile_size: int = DEFAULT_TILE_SIZE, scheduler: str = None, workers: int = None,
                      threads_per_worker: int = 1, onnx_threads: int = 1, device: str = "cpu",
                      models_dir: str = None, resume: bool = False, progress: bool = True, quiet: bool = True,
                      info=None) -> DistributedRun:
    """Embed the S2 (+ S1) stacks over `bounds` with one Dask task per tile; returns a DistributedRun.

    scheduler: None for an embedded LocalCluster of `workers` processes x
    `threads_per_worker` threads on 127.0.0.1, or the address of an existing scheduler.
    resume: continue an interrupted run in `output_folder` (finished tiles are reused).
    info: a callable taking one line of text (default: print to stderr).
    """
    info = info or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    _check_cluster_options(workers, threads_per_worker, onnx_threads, device)
    output_folder = os.path.abspath(output_folder)
    plan = plan_embedding(s2_path, output_folder, s1_path=s1_path, bounds=bounds, tile_size=tile_size)
    # The client checks bands and reads names and version; workers load their own copy.
    models = load_models(models_dir, threads=1, providers=["CPUExecutionProvider"])
    plan.check_models(models)
    for note in plan.notes(models):
        info(note)
    store = TileStore(output_folder)
    finished = store.open(_job_identity(plan, tile_size, models, models_dir, device), resume)
    task_job = TileJob(s2=plan.s2, s1=plan.s1, tiles_dir=store.path, models_dir=models_dir,
                       onnx_threads=int(onnx_threads), device=device)
    run = DistributedRun("", [], list(plan.s2.dates), len(plan.tiles), 0, 0, 0.0,
                         sum(t.pixels for t in plan.tiles) * len(plan.s2.dates))
    sink = client = cluster = None
    try:
        sink = _TileSink(plan.writer(output_folder, models), plan, store.path, len(models.output_names), run)
        del models
        report_swept(info, sink.writer.swept)
        todo = sink.reuse_finished(finished)
        if resume:
            info(f"Resuming: {run.reused} of {len(plan.tiles)} tiles already done, {len(todo)} to compute.")
        if todo:
            client, cluster = _connect(scheduler, int(workers or default_workers()), int(threads_per_worker), quiet)
            _announce_cluster(client, cluster, scheduler, plan, store.path, run, info)
            _run_tasks(client, todo, task_job, sink, run, progress)
        publish_started = time.perf_counter()
        run.files, run.index_path = sink.writer.publish()
        run.publish_seconds = time.perf_counter() - publish_started
        sink = None
        store.remove()
    except ModuleNotFoundError as error:
        raise CameoInputError(
            f"A Dask worker cannot import {error.name!r}: start the workers with this checkout on their "
            "PYTHONPATH and the same Python packages (numpy, onnxruntime, rasterio).") from error
    finally:
        if sink is not None:
            sink.writer.abort()
        store.close(drop_if_empty=True)  # a run that saved nothing leaves nothing behind
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    run.seconds = time.perf_counter() - started
    return run


def _check_cluster_options(workers, threads_per_worker, onnx_threads, device):
    if workers is not None and int(workers) < 1:
        raise CameoInputError(f"--workers {workers}: give at least 1 worker.")
    if int(threads_per_worker) < 1 or int(onnx_threads) < 1:
        raise CameoInputError("Threads per worker and ONNX threads must be at least 1.")
    if device not in DEVICES:
        raise CameoInputError(f"Unknown device {device!r}: use one of {', '.join(DEVICES)}.")


def _job_identity(plan, tile_size, models, models_dir, device):
    """What a resumed run must share with the interrupted one (the tile store refuses another job)."""
    s2, s1, window = plan.s2, plan.s1, plan.window
    return {"format": 1, "s2": _file_identity(s2.path), "s1": _file_identity(s1.path) if s1 else None,
            "window": [int(window.col_off), int(window.row_off), int(window.width), int(window.height)],
            "tile_size": int(tile_size), "models": f"{models.name} {models.version}",
            "models_sha256": _models_identity(models_dir), "device": device,
            "dates": [d.isoformat() for d in s2.dates]}


class _TileSink:
    """The client's side of the tiles: it copies each finished tile from the tile store into the
    per-date files (the client is their single writer)."""

    def __init__(self, writer, plan, tiles_dir, n_features, run):
        self.writer, self.window, self.tiles_dir, self.run = writer, plan.window, tiles_dir, run
        self.tiles, self.n_dates, self.n_features = plan.tiles, len(plan.s2.dates), n_features

    def load(self, tile):
        return load_tile(self.tiles_dir, tile, (self.n_dates, self.n_features, tile.height, tile.width))

    def put(self, tile, array):
        started = time.perf_counter()
        for t in range(self.n_dates):
            self.writer.write(t, array[t], tile.row - int(self.window.row_off), tile.col - int(self.window.col_off))
        self.run.write_seconds += time.perf_counter() - started

    def reuse_finished(self, finished):
        """Copies the tiles an earlier attempt saved; returns those still to compute."""
        todo = []
        for tile in self.tiles:
            array = self.load(tile) if tile_file_name(tile) in finished else None
            if array is None:
                todo.append(tile)
            else:
                self.put(tile, array)
                self.run.reused += 1
        return todo


def _announce_cluster(client, cluster, scheduler, plan, tiles_dir, run, info):
    if scheduler:
        _check_workers_see(client, [plan.s2.path] + ([plan.s1.path] if plan.s1 else []), tiles_dir)
    run.dashboard = _dashboard_link(client, embedded=cluster is not None)
    n_workers = len(client.scheduler_info().get("workers", {}))
    info(f"Dask: {n_workers} workers at {client.scheduler.address}; dashboard: "
         f"{run.dashboard or 'not available (install bokeh>=3.1 for it)'}")


def _run_tasks(client, todo, task_job, sink, run, progress):
    """One task per tile of `todo`; each finished tile goes into the sink as it arrives."""
    from distributed import KilledWorker, as_completed

    token = uuid.uuid4().hex[:8]
    futures = client.map(compute_tile, todo, job=task_job, pure=False,
                         key=[f"cameo-tile-{token}-{t.row}-{t.col}" for t in todo])
    by_key = {future.key: tile for future, tile in zip(futures, todo)}
    bar = _progress_bar(run.tiles, run.reused, progress)
    try:
        for future in as_completed(futures):
            tile = by_key[future.key]
            try:
                report = future.result()  # raises the task's error here
            except KilledWorker as error:
                raise DistributedRunError(
                    f"Tile {tile} killed its Dask worker several times (out of memory?): run again with "
                    f"--resume and a smaller --tile-size ({run.computed + run.reused} of {run.tiles} tiles "
                    "are saved).") from error
            array = sink.load(tile)
            if array is None:
                raise RuntimeError(f"Tile {tile} was reported done but its file is missing or damaged.")
            sink.put(tile, array)
            _count(run, report)
            future.release()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        try:
            client.cancel(futures)  # what is still running after an error or Ctrl-C
        except Exception:  # noqa: BLE001 - best effort while shutting down
            pass


def _count(run, report):
    if report["computed"]:
        run.computed += 1
        run.compute_seconds += report["compute_seconds"]
        run.workers[report["pid"]] = run.workers.get(report["pid"], 0) + 1
        run.model_loads[report["pid"]] = report["model_loads"]
    else:
        run.reused += 1


__all__ = ["DistributedRun", "embed_distributed"]
