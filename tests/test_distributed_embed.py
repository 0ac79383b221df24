"""Region-scale embedding on Dask distributed: a real LocalCluster (2 worker processes on
127.0.0.1), real ONNX Runtime with the tiny random-weight models, stacks cut from the
real Belgian chip (its first 12 dates, to keep the file fast on a loaded machine).

The distributed outputs must be bitwise identical to the single-process engine's, a
worker killed mid-write must not lose or corrupt a tile, and an interrupted run must
resume without recomputing its finished tiles.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from kill_worker_once import preload_env

from models.distributed.store import TILES_DIR, TMP_MARK, TileStore, load_tile, save_tile, tile_path
from models.embedding.job import embed_stacks
from models.embedding.tiles import Tile
from models.errors import CameoInputError
from models.stack import read_stack, write_stack

REPO = Path(__file__).resolve().parent.parent
N_DATES = 12
TILE = 16  # a 32 x 32 px extent -> 4 tiles (tasks)


@pytest.fixture(scope="module")
def stacks(belgian_stacks, tmp_path_factory):
    """The chip's S2 + S1 stacks with their first 12 dates (still >= the 11-date window)."""
    folder = tmp_path_factory.mktemp("dist-stacks")
    out = {}
    for key, name in (("S2_STACK", "s2_stack.tif"), ("S1_STACK", "s1_stack.tif")):
        stack = read_stack(belgian_stacks[key])
        extra = {}
        if stack.s1_gap_days is not None:
            extra["CAMEO_S1_GAP_DAYS"] = ",".join(f"{g:g}" for g in stack.s1_gap_days[:N_DATES])
            extra["CAMEO_S1_DATES"] = ",".join(d.isoformat() if d else "" for d in stack.s1_dates[:N_DATES])
        out[key] = write_stack(str(folder / name), stack.values[:N_DATES], stack.dates[:N_DATES], stack.bands,
                               stack.crs, stack.transform, stack.modality, **extra)
    return out


@pytest.fixture(scope="module")
def extent(stacks):
    """Columns 0..32 (the raster's left edge: halo outside the raster), rows 16..48; QGIS order."""
    with rasterio.open(stacks["S2_STACK"]) as data:
        left, top = data.bounds.left, data.bounds.top
    return left, left + 320, top - 480, top - 160


@pytest.fixture(scope="module")
def reference(stacks, extent, tiny_models_dir, tmp_path_factory):
    """The single-process engine's output (one 256-px tile, default threads) as raw bits."""
    xmin, xmax, ymin, ymax = extent
    run = embed_stacks(stacks["S2_STACK"], str(tmp_path_factory.mktemp("single")), s1_path=stacks["S1_STACK"],
                       bounds=(xmin, ymin, xmax, ymax), models_dir=str(tiny_models_dir))
    return read_bits(run.index_path)


def read_bits(path):
    with rasterio.open(path) as data:
        return data.read().view(np.uint32)  # bitwise comparison, NaN payloads included


def command(stacks, extent, tiny_models_dir, out, *extra):
    return [sys.executable, "-m", "models.distributed", "embed", "--s2", stacks["S2_STACK"],
            "--s1", stacks["S1_STACK"], "--out", str(out), "--extent", ",".join(map(str, extent)),
            "--tile-size", str(TILE), "--models-dir", str(tiny_models_dir), "--no-progress", *extra]


def run_cli(args, env=None, timeout=240):
    done = subprocess.run(args, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    return done


def summary_of(done):
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_published_like_reference(out, reference):
    assert np.array_equal(read_bits(out / "embeddings.vrt"), reference)
    leftovers = [name for name in os.listdir(out) if name.startswith(".")]
    assert leftovers == []  # no tile store, no staging folder
    assert len([n for n in os.listdir(out) if n.startswith("embedding_")]) == N_DATES


@pytest.fixture(scope="module")
def cluster():
    """An existing Dask cluster: 2 worker processes, 1 thread each, loopback only."""
    from distributed import LocalCluster

    import logging

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as local:
        yield local


def test_run_on_an_existing_cluster_is_bitwise_identical_and_loads_models_once_per_worker(
        stacks, extent, tiny_models_dir, reference, cluster, tmp_path):
    address = cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    first = summary_of(run_cli(command(stacks, extent, tiny_models_dir, tmp_path / "a", "--scheduler", address)))
    assert (first["tiles"], first["computed"], first["reused"]) == (4, 4, 0)
    assert_published_like_reference(tmp_path / "a", reference)
    # A second job on the same workers: their cached models are reused, never loaded again.
    second = summary_of(run_cli(command(stacks, extent, tiny_models_dir, tmp_path / "b", "--scheduler", address)))
    assert_published_like_reference(tmp_path / "b", reference)
    loads = {**first["model_loads"], **second["model_loads"]}
    assert loads and set(loads.values()) == {1}
    assert set(loads) <= {str(pid) for pid in cluster_worker_pids(address)}


def cluster_worker_pids(address):
    from distributed import Client

    with Client(address, timeout="20s") as client:
        return set(client.run(os.getpid).values())


def test_a_worker_killed_mid_write_loses_and_corrupts_no_tile(stacks, extent, tiny_models_dir, reference, tmp_path):
    marker = tmp_path / "killed"
    done = run_cli(command(stacks, extent, tiny_models_dir, tmp_path / "out", "--workers", "2"),
                   env=preload_env(marker))
    summary = summary_of(done)
    assert marker.exists()  # one worker really died (SIGKILL) with its tile in a temporary file
    killed_pid = marker.read_text()
    assert killed_pid not in summary["workers"]  # that tile was redone by a live (or restarted) worker
    assert summary["computed"] + summary["reused"] == summary["tiles"] == 4
    assert set(summary["model_loads"].values()) == {1}
    assert_published_like_reference(tmp_path / "out", reference)


def test_an_interrupted_run_resumes_without_recomputing_finished_tiles(stacks, extent, tiny_models_dir, reference,
                                                                       tmp_path):
    out = tmp_path / "out"
    args = command(stacks, extent, tiny_models_dir, out, "--workers", "2")
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # its own process group: client, cluster, workers
    tiles_dir = out / TILES_DIR
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and process.poll() is None:
            if tiles_dir.is_dir() and any(p.suffix == ".npy" for p in tiles_dir.iterdir()):
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before the test could interrupt it"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # a hard crash of the client and its workers
        process.wait(timeout=30)
    wait_until_group_is_gone(process.pid)
    finished = sorted(p.name for p in tiles_dir.iterdir() if p.name.endswith(".npy"))
    assert 1 <= len(finished) < 4
    assert not (out / "embeddings.vrt").exists()  # nothing looks finished

    refused = run_cli(args)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr

    summary = summary_of(run_cli(args + ["--resume"]))
    assert summary["reused"] == len(finished)
    assert summary["computed"] == 4 - len(finished)
    assert_published_like_reference(out, reference)


def test_ctrl_c_stops_client_and_workers_with_one_message(stacks, extent, tiny_models_dir, tmp_path):
    out = tmp_path / "out"
    # Output to files, not pipes that nobody reads until the end: a full pipe would block
    # the run before its first tile (Debian 13's onnxruntime writes ~116 KB to stderr).
    stderr_file = open(tmp_path / "stderr.txt", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        # 4 x 4 px tiles: 64 tasks, so the run is still going when Ctrl-C arrives (with the
        # module's 4 tiles a fast machine could finish them all after the first was seen)
        command(stacks, extent, tiny_models_dir, out, "--workers", "2", "--tile-size", "4"), cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=stderr_file, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and process.poll() is None:
            if (out / TILES_DIR).is_dir() and any(p.suffix == ".npy" for p in (out / TILES_DIR).iterdir()):
                break
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        stderr_file.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    wait_until_group_is_gone(process.pid)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr.strip().splitlines()[-1]
    assert not (out / "embeddings.vrt").exists()


def wait_until_group_is_gone(pgid, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {pgid} still alive")


@pytest.mark.parametrize("case", ["missing", "swapped", "outside"])
def test_bad_input_is_one_line_and_exit_status_2(stacks, tiny_models_dir, tmp_path, case):
    args = [sys.executable, "-m", "models.distributed", "embed", "--out", str(tmp_path / "out"),
            "--models-dir", str(tiny_models_dir)]
    args += {"missing": ["--s2", str(tmp_path / "nope.tif")],
             "swapped": ["--s2", stacks["S1_STACK"]],
             "outside": ["--s2", stacks["S2_STACK"], "--extent", "0,100,0,100"]}[case]
    done = run_cli(args, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "error:" in done.stderr


def test_help_names_the_options():
    done = run_cli([sys.executable, "-m", "models.distributed", "embed", "--help"], timeout=60)
    assert done.returncode == 0
    for option in ("--s2", "--s1", "--out", "--tile-size", "--scheduler", "--workers", "--threads-per-worker",
                   "--resume", "--extent", "--models-dir"):
        assert option in done.stdout


def test_tile_files_are_atomic_and_checked(tmp_path):
    tile = Tile(row=16, col=32, height=3, width=2)
    array = np.arange(2 * 7 * 3 * 2, dtype=np.float32).reshape(2, 7, 3, 2)
    seen = []
    save_tile(str(tmp_path), tile, array, before_rename=lambda tmp: seen.append(
        (os.path.basename(tmp), os.path.exists(tile_path(str(tmp_path), tile)))))
    assert TMP_MARK in seen[0][0] and seen[0][1] is False  # the final name appears only complete
    assert np.array_equal(load_tile(str(tmp_path), tile, array.shape), array)
    assert load_tile(str(tmp_path), tile, (3, 7, 3, 2)) is None  # another job's shape: not reused
    with open(tile_path(str(tmp_path), tile), "r+b") as handle:
        handle.truncate(100)
    assert load_tile(str(tmp_path), tile, array.shape) is None  # damaged: recomputed, not used


def test_tile_store_refuses_another_job_and_a_second_client(tmp_path):
    store = TileStore(str(tmp_path))
    assert store.open({"job": 1}, resume=False) == set()
    save_tile(store.path, Tile(0, 0, 1, 1), np.zeros((1, 7, 1, 1), np.float32))
    with pytest.raises(CameoInputError, match="Another run is writing"):
        TileStore(str(tmp_path)).open({"job": 1}, resume=True)
    store.close()
    with pytest.raises(CameoInputError, match="another job"):
        TileStore(str(tmp_path)).open({"job": 2}, resume=True)
    again = TileStore(str(tmp_path))
    assert again.open({"job": 1}, resume=True) == {"r000000_c000000.npy"}
    again.close()


def test_gpp_option_maps_the_same_gpp_as_the_single_process_pipeline(belgian_stacks, tmp_path):
    """--gpp: embeddings on the cluster, then cameo:predictgpp's engine; bundled models
    (the GPP model accepts only the embedding models it was trained on), all the chip's
    dates (a GPP window needs 90 days), an 8 x 8 px extent."""
    from models.gpp.predict import predict_gpp

    with rasterio.open(belgian_stacks["S2_STACK"]) as data:
        left, top = data.bounds.left, data.bounds.top
    xmin, xmax, ymin, ymax = left + 200, left + 280, top - 280, top - 200
    done = run_cli([sys.executable, "-m", "models.distributed", "embed", "--s2", belgian_stacks["S2_STACK"],
                    "--s1", belgian_stacks["S1_STACK"], "--out", str(tmp_path / "emb"),
                    "--extent", f"{xmin},{xmax},{ymin},{ymax}", "--tile-size", "8", "--workers", "1",
                    "--gpp", str(tmp_path / "gpp"), "--no-progress"])
    summary = summary_of(done)
    n_dates = len(read_stack(belgian_stacks["S2_STACK"]).dates)
    assert summary["gpp"]["files"] == n_dates
    single = embed_stacks(belgian_stacks["S2_STACK"], str(tmp_path / "single-emb"),
                          s1_path=belgian_stacks["S1_STACK"], bounds=(xmin, ymin, xmax, ymax))
    expected = predict_gpp(single.index_path, str(tmp_path / "single-gpp"))
    got, want = read_bits(summary["gpp"]["index"]), read_bits(expected.index_path)
    assert np.array_equal(got, want)
    assert np.isfinite(want.view(np.float32)).sum() > 0  # some dates have a full 90-day window


def test_gpp_folder_holding_another_run_is_refused_before_embedding(stacks, extent, tiny_models_dir, tmp_path):
    (tmp_path / "gpp").mkdir()
    (tmp_path / "gpp" / "gpp_2018-06-30.tif").write_bytes(b"an earlier run")
    done = run_cli(command(stacks, extent, tiny_models_dir, tmp_path / "emb", "--gpp", str(tmp_path / "gpp")))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "already holds GPP rasters of another run" in done.stderr
    assert not (tmp_path / "emb").exists() or not list((tmp_path / "emb").iterdir())
