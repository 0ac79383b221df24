"""Reliability: cancel, SIGKILL, concurrent runs, a full disk, a read-only folder.

Nothing is lost and nothing corrupt: after a fault no file that looks like a finished
output exists (temporary files are hidden: `.name.tmp-*`, `.cameo-partial-*`), the
inputs are byte-identical, and a rerun into the same folder succeeds. The full disk
and the read-only folder are real tmpfs mounts (we run as root); the suite fails, not
skips, if mounting is refused.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import processing
import pytest
import rasterio
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from reliability_helpers import (
    DATES,
    REPO,
    finished_looking,
    listing,
    s1_series,
    s2_series,
    tiny_stacks,
    tree_digest,
    write_embedding,
)


class CancelAfter(QgsProcessingFeedback):
    """Presses Cancel (QgsProcessingFeedback.cancel) after `limit` progress reports."""

    def __init__(self, limit):
        super().__init__()
        self.limit, self.reports = limit, 0

    def setProgress(self, progress):  # noqa: N802 - QGIS API
        self.reports += 1
        if self.reports == self.limit:
            self.cancel()
        super().setProgress(progress)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault-inputs")
    s2 = s2_series(str(root / "s2"), DATES, size=48)
    s1 = s1_series(str(root / "s1"), DATES, size=24)
    stacks = tiny_stacks(str(root / "stacks"), size=48)
    return {"s2": s2, "s1": s1, "stacks": stacks, "root": str(root)}


def _all_inputs(inputs, models):
    return tree_digest(inputs["root"], str(models))


def _floats(path):
    with rasterio.open(path) as data:
        return data.read()


# ----------------------------------------------------------------------------- cancel in QGIS

def test_cancel_preparestack_leaves_nothing_and_a_rerun_succeeds(qgis_app, inputs, tiny_models_dir, tmp_path):
    before = _all_inputs(inputs, tiny_models_dir)
    params = {"S2": inputs["s2"], "S1": inputs["s1"], "OUTPUT_FOLDER": str(tmp_path / "out")}
    (tmp_path / "out").mkdir()
    feedback = CancelAfter(limit=6)  # pass 1 reports 4 times: this is inside pass 2, writers open
    with pytest.raises(QgsProcessingException, match="^Cancelled by the user.$"):
        processing.run("cameo:preparestack", params, feedback=feedback)
    assert feedback.reports == 6
    assert listing(tmp_path / "out") == []
    result = processing.run("cameo:preparestack", params)
    assert sorted(os.listdir(tmp_path / "out")) == ["dates.csv", "s1_stack.tif", "s2_stack.tif"]
    assert _floats(result["S2_STACK"]).shape == (40, 48, 48)
    assert _all_inputs(inputs, tiny_models_dir) == before


def test_cancel_embed_leaves_nothing_and_a_rerun_succeeds(qgis_app, inputs, tiny_models_dir, tmp_path):
    before = _all_inputs(inputs, tiny_models_dir)
    params = {"S2_STACK": inputs["stacks"]["S2_STACK"], "S1_STACK": inputs["stacks"]["S1_STACK"],
              "MODELS": str(tiny_models_dir), "TILE_SIZE": 32, "THREADS": 1,
              "OUTPUT_FOLDER": str(tmp_path / "out")}
    feedback = CancelAfter(limit=6)  # 4 tiles of 4 dates: inside the second tile
    with pytest.raises(QgsProcessingException, match="^Cancelled by the user.$"):
        processing.run("cameo:embed", params, feedback=feedback)
    assert not (tmp_path / "out").exists()  # created by the run, removed with everything in it
    result = processing.run("cameo:embed", params)
    assert len(result["DATES"].split(",")) == 4
    assert np.isfinite(_floats(result["EMBEDDINGS"])).mean() > 0.9
    assert _all_inputs(inputs, tiny_models_dir) == before


def test_cancel_embeddingrgb_leaves_nothing(qgis_app, tmp_path):
    source = write_embedding(str(tmp_path / "embedding_2018-06-01.tif"), DATES[0])  # 3 blocks of 512 rows
    before = tree_digest(source)
    (tmp_path / "rgb").mkdir()
    params = {"INPUT": source, "OUTPUT": str(tmp_path / "rgb" / "view.tif")}
    feedback = CancelAfter(limit=1)  # after the first block is written
    with pytest.raises(QgsProcessingException, match="^Cancelled by the user.$"):
        processing.run("cameo:embeddingrgb", params, feedback=feedback)
    assert feedback.reports == 1
    assert listing(tmp_path / "rgb") == []
    processing.run("cameo:embeddingrgb", params)
    assert os.listdir(tmp_path / "rgb") == ["view.tif"]
    assert tree_digest(source) == before


# ----------------------------------------------------------------------------- SIGKILL of a real process

KILL_SCRIPT = r"""
import json, sys, time
from models.progress import NullProgress

class HoldAfter(NullProgress):
    # Runs normally, then stops (sleeps) mid-run once `limit` progress reports came in.
    def __init__(self, limit):
        self.limit, self.reports = limit, 0
    def setProgress(self, percent):
        self.reports += 1
        if self.reports == self.limit:
            print("MID-RUN", flush=True)
            time.sleep(600)

args = json.loads(sys.argv[1])
if args["job"] == "prepare":
    from models.stack import prepare_stack
    prepare_stack(args["s2"], args["out"], s1=args["s1"], progress=HoldAfter(args["limit"]))
else:
    from models.embedding.job import embed_stacks
    embed_stacks(args["s2"], args["out"], s1_path=args["s1"], tile_size=32, threads=1,
                 models_dir=args["models"], progress=HoldAfter(args["limit"]))
print("FINISHED", flush=True)
"""


def _start_and_hold(args):
    """Start the job in a real Python process and wait until it holds mid-run (files open)."""
    env = dict(os.environ, PYTHONPATH=REPO)
    # stderr to a file, not a pipe: nobody reads it while waiting for MID-RUN, and a full
    # pipe (Debian 13's onnxruntime writes ~116 KB of schema notices) would block the job.
    errors = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, json.dumps(args)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=errors, text=True)
    line = process.stdout.readline()
    if line.strip() != "MID-RUN":
        _kill(process)
        errors.seek(0)
        raise AssertionError(line + errors.read()[-4000:])
    return process


def _kill(process):
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return process.returncode


def _run_and_kill(args):
    """Start the job in a real Python process, SIGKILL it mid-run (while its files are open)."""
    assert _kill(_start_and_hold(args)) == -signal.SIGKILL


def _age_hidden_items(folder, seconds=3600):
    """Date the hidden work files back, as if the killed run had been hours ago."""
    old = time.time() - seconds
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (old, old))


class Messages:
    def __init__(self):
        self.lines = []

    def setProgress(self, percent):  # noqa: N802 - QgsProcessingFeedback's names
        pass

    def pushInfo(self, message):  # noqa: N802
        self.lines.append(message)

    def isCanceled(self):  # noqa: N802
        return False


def test_sigkill_during_preparestack_leaves_no_finished_looking_file(inputs, tmp_path):
    from models.stack import prepare_stack, read_stack

    before = tree_digest(inputs["root"])
    out = tmp_path / "out"
    _run_and_kill({"job": "prepare", "s2": inputs["s2"], "s1": inputs["s1"], "out": str(out), "limit": 7})
    left = listing(out)
    assert finished_looking(out) == []
    leftovers = sorted(name for name in left if ".tmp-" in name)
    assert any(name.startswith(".s2_stack.tmp-") for name in leftovers), left  # killed while writing
    _age_hidden_items(out)
    messages = Messages()
    result = prepare_stack(inputs["s2"], str(out), s1=inputs["s1"], progress=messages)  # the rerun, same folder
    assert read_stack(result.s2_stack).dates == DATES
    assert tree_digest(inputs["root"]) == before
    # the killed run's temporary files are gone, and the user was told which
    assert listing(out) == ["dates.csv", "s1_stack.tif", "s2_stack.tif"]
    assert any(f"{len(leftovers)} unfinished item(s)" in line and all(n in line for n in leftovers)
               for line in messages.lines), messages.lines


def test_sigkill_during_embed_leaves_no_finished_looking_file(inputs, tiny_models_dir, tmp_path):
    from models.embedding.job import embed_stacks

    before = tree_digest(inputs["root"])
    out = tmp_path / "out"
    stacks = inputs["stacks"]
    _run_and_kill({"job": "embed", "s2": stacks["S2_STACK"], "s1": stacks["S1_STACK"], "out": str(out),
                   "models": str(tiny_models_dir), "limit": 9})
    left = listing(out)
    assert finished_looking(out) == []
    assert any(name.startswith(".cameo-partial-") for name in left), left
    _age_hidden_items(out)
    messages = Messages()
    run = embed_stacks(stacks["S2_STACK"], str(out), s1_path=stacks["S1_STACK"], tile_size=32, threads=1,
                       models_dir=str(tiny_models_dir), progress=messages)
    assert len(run.files) == 4 and np.isfinite(_floats(run.index_path)).mean() > 0.9
    assert tree_digest(inputs["root"]) == before
    assert not any(name.startswith(".") for name in listing(out)), listing(out)  # the staging folder swept
    assert any("1 unfinished item(s)" in line and ".cameo-partial-" in line for line in messages.lines)


def test_a_live_runs_work_files_are_never_swept(inputs, tiny_models_dir, tmp_path):
    """Two runs into one folder: the second may sweep only what dead runs left, however old."""
    from models.embedding.job import embed_stacks
    from models.stack import prepare_stack

    stacks = inputs["stacks"]
    out = tmp_path / "out"
    holders = [_start_and_hold({"job": "embed", "s2": stacks["S2_STACK"], "s1": stacks["S1_STACK"],
                                "out": str(out), "models": str(tiny_models_dir), "limit": 9}),
               _start_and_hold({"job": "prepare", "s2": inputs["s2"], "s1": inputs["s1"], "out": str(out),
                                "limit": 7})]
    try:
        live = sorted(name for name in listing(out) if name.startswith("."))
        assert any(n.startswith(".cameo-partial-") for n in live) and any(".tmp-" in n for n in live), live
        _age_hidden_items(out)  # old, but still locked by their live processes
        prepare_stack(inputs["s2"], str(out), progress=Messages())
        messages = Messages()
        embed_stacks(stacks["S2_STACK"], str(out / "emb"), tile_size=32, threads=1,
                     models_dir=str(tiny_models_dir), progress=messages)
        assert all(name in listing(out) for name in live), (live, listing(out))
        assert not any("unfinished" in line for line in messages.lines)
    finally:
        for holder in holders:
            _kill(holder)


# ----------------------------------------------------------------------------- two runs at once

CONCURRENT_SCRIPT = r"""
import json, sys
args = json.loads(sys.argv[1])
if args["job"] == "prepare":
    from models.stack import prepare_stack
    prepare_stack(args["s2"], args["out"], s1=args["s1"], block_size=16)
else:
    from models.embedding.job import embed_stacks
    embed_stacks(args["s2"], args["out"], s1_path=args["s1"], tile_size=32, threads=1,
                 models_dir=args["models"])
print("DONE", flush=True)
"""


def _start(args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.Popen([sys.executable, "-c", CONCURRENT_SCRIPT, json.dumps(args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_runs_at_once_into_different_folders_do_not_interfere(inputs, tiny_models_dir, tmp_path):
    before = tree_digest(inputs["root"])
    stacks = inputs["stacks"]
    jobs = []
    for name in ("a", "b"):  # sibling folders, as a batch run would use
        jobs.append(_start({"job": "prepare", "s2": inputs["s2"], "s1": inputs["s1"],
                            "out": str(tmp_path / f"stack_{name}")}))
        jobs.append(_start({"job": "embed", "s2": stacks["S2_STACK"], "s1": stacks["S1_STACK"],
                            "out": str(tmp_path / f"emb_{name}"), "models": str(tiny_models_dir)}))
    for job in jobs:
        stdout, stderr = job.communicate(timeout=300)
        assert job.returncode == 0 and stdout.strip() == "DONE", stderr
    for kind, names in (("stack", ["dates.csv", "s1_stack.tif", "s2_stack.tif"]),
                        ("emb", [f"embedding_{d}.tif" for d in DATES] + ["embeddings.vrt"])):
        a, b = tmp_path / f"{kind}_a", tmp_path / f"{kind}_b"
        assert listing(a) == listing(b) == sorted(names)  # no staging or temporary file left
        for name in names:
            if name.endswith(".tif"):
                assert np.array_equal(_floats(a / name), _floats(b / name), equal_nan=True), name
            else:
                assert (a / name).read_bytes() == (b / name).read_bytes().replace(b"emb_b", b"emb_a")
    assert tree_digest(inputs["root"]) == before


# ----------------------------------------------------------------------------- full disk, read-only folder

def _mount_tmpfs(path, options):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs ({done.stderr.strip()}): these tests need root")


def _unmount(path):
    subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB file system: too small for the outputs below."""
    disk = tmp_path / "small disk"
    _mount_tmpfs(disk, "size=64k")
    yield disk
    _unmount(disk)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only file system (root ignores permission bits, not a read-only mount)."""
    disk = tmp_path / "ro"
    _mount_tmpfs(disk, "size=1m")
    (disk / "out").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    yield disk
    _unmount(disk)


FULL = (r"^Writing to .*small disk.* failed: not enough disk space \(.*\)\. Free some disk space or choose an "
        r"output folder on another disk, then run again \(the partial files were removed\)\.$")


@pytest.fixture(scope="module")
def noisy_inputs(tmp_path_factory):
    """Incompressible inputs (random values), so the outputs cannot fit on the small disk."""
    root = tmp_path_factory.mktemp("noisy")
    rng = np.random.default_rng(1)
    files = s2_series(str(root / "s2"), DATES, size=64)
    for path in files:
        with rasterio.open(path, "r+") as data:
            for band in range(1, 11):
                data.write(rng.integers(500, 4000, (64, 64)).astype("uint16"), band)
    stacks = tiny_stacks(str(root / "stacks"), size=64)
    return {"s2": files, "stacks": stacks, "root": str(root)}


def test_full_disk_preparestack_clear_error_and_no_partial_file(qgis_app, noisy_inputs, small_disk):
    before = tree_digest(noisy_inputs["root"])
    with pytest.raises(QgsProcessingException, match=FULL):
        processing.run("cameo:preparestack", {"S2": noisy_inputs["s2"], "OUTPUT_FOLDER": str(small_disk / "out")})
    assert listing(small_disk) == []
    assert tree_digest(noisy_inputs["root"]) == before


def test_full_disk_embed_clear_error_and_no_partial_file(qgis_app, noisy_inputs, tiny_models_dir, small_disk):
    before = tree_digest(noisy_inputs["root"])
    with pytest.raises(QgsProcessingException, match=FULL):
        processing.run("cameo:embed", {"S2_STACK": noisy_inputs["stacks"]["S2_STACK"],
                                       "MODELS": str(tiny_models_dir), "TILE_SIZE": 64, "THREADS": 1,
                                       "OUTPUT_FOLDER": str(small_disk / "out")})
    assert listing(small_disk) == []
    assert tree_digest(noisy_inputs["root"]) == before


def test_full_disk_embeddingrgb_clear_error_and_no_partial_file(qgis_app, noisy_inputs, tiny_models_dir,
                                                                small_disk, tmp_path):
    embed = processing.run("cameo:embed", {"S2_STACK": noisy_inputs["stacks"]["S2_STACK"],
                                           "MODELS": str(tiny_models_dir), "TILE_SIZE": 64,
                                           "OUTPUT_FOLDER": str(tmp_path / "emb")})
    filler = small_disk / "other files"
    with open(filler, "wb") as handle:  # another program filled the disk
        try:
            handle.write(b"\0" * 60_000)
        except OSError:
            pass
    with pytest.raises(QgsProcessingException, match=FULL):
        processing.run("cameo:embeddingrgb", {"INPUT": embed["EMBEDDINGS"], "OUTPUT": str(small_disk / "rgb.tif")})
    assert listing(small_disk) == ["other files"]


def test_read_only_output_folder_clear_error(qgis_app, inputs, tiny_models_dir, read_only_folder):
    out = read_only_folder / "out"
    # One wording for every algorithm: it names the folder and the fix.
    not_writable = r"^The output folder .*ro/out is not writable: choose a folder you can write to\.$"
    with pytest.raises(QgsProcessingException, match=not_writable):
        processing.run("cameo:preparestack", {"S2": inputs["s2"], "OUTPUT_FOLDER": str(out)})
    with pytest.raises(QgsProcessingException, match=not_writable):
        processing.run("cameo:embed", {"S2_STACK": inputs["stacks"]["S2_STACK"], "MODELS": str(tiny_models_dir),
                                       "OUTPUT_FOLDER": str(out)})
    with pytest.raises(QgsProcessingException,
                       match=r"^Cannot create the output folder .*ro/new \(Read-only file system\): choose a "
                             r"folder you can write to\.$"):
        processing.run("cameo:preparestack", {"S2": inputs["s2"], "OUTPUT_FOLDER": str(read_only_folder / "new")})
    assert listing(read_only_folder) == ["out"]
