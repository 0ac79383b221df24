"""Training on real windows of the shared Belgian chips (through models.stack), with tiny
models and few steps: the loss decreases, resume continues identically, the export of
the trained run passes the parity checks on the real validation chip, DDP runs."""

import copy
import csv
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.train.config import default_config, load_config  # noqa: E402
from tests.train_helpers import TINY  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(runs_dir, stack_dir, steps=20, **train):
    ov = copy.deepcopy(TINY)
    t = {"max_steps": steps, "eval_every": 10, "batch_size": 8, "val_windows": 32, "warmup_steps": 3, "lr": 3e-3,
         "num_threads": 1, **train}
    for stage in ("s2", "s1", "fusion"):
        ov[stage]["train"] = dict(t)
    ov.update({"runs_dir": str(runs_dir), "export": {"out_dir": str(runs_dir / "onnx")}})
    ov["data"] = {"stack_dir": str(stack_dir)}
    return default_config(ov)


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory, data_dir):
    from models.train.data import ensure_stacks

    folder = tmp_path_factory.mktemp("stacks")
    for chip in ("belgium_00002806639B424A", "belgium_0000280849BAC91C"):
        ensure_stacks(chip, str(folder))
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, stack_dir):
    from models.train.loop import train_stage

    runs = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(runs, stack_dir, steps=30)
    summaries = {stage: train_stage(stage, cfg, quiet=True) for stage in ("s2", "s1")}
    cfg_f = tiny_config(runs, stack_dir, steps=10)
    summaries["fusion"] = train_stage("fusion", cfg_f, quiet=True)
    return cfg, summaries


def test_windows_come_from_the_real_stacks(stack_dir):
    from models.train.data import WindowSampler, compute_stats, load_chips

    chips = load_chips(["belgium_00002806639B424A"], str(stack_dir))
    stats = compute_stats(chips)
    # S2 mean reflectance of a Belgian farmland chip: visible low, NIR high
    assert 0.03 < stats["S2"]["mean"][0] < 0.15 and 0.2 < stats["S2"]["mean"][6] < 0.45
    assert 0.3 < stats["S1"]["mean"][0] < 0.8          # VV around -10 dB -> (dB + 30) / 35
    cfg = default_config()["data"]
    sampler = WindowSampler(chips, stats, cfg, ("S2", "S1"), seed=0)
    b = sampler.batch(64)
    assert b["S2"]["x"].shape == (64, 11, 11, 15, 15) and b["S1"]["x"].shape == (64, 11, 3, 15, 15)
    offsets, target = b["offsets"], b["target"]
    assert np.all(offsets[np.arange(64), target] == 0)
    valid = b["exists"] > 0
    for o, v in zip(offsets, valid):                   # frames sorted by date, span < 200 days (or the inference window)
        assert np.all(np.diff(o[v]) > 0) and o[v].max() - o[v].min() < 400
    assert set(target.tolist()) - {5}                  # off-centre targets are drawn too
    centre = b["S2"]["mask"][np.arange(64), target, 7, 7]
    assert centre.mean() > 0.9                         # the target pixel is (almost always) valid
    # invalid pixels: value 0 and validity 0 (window-independent fill)
    x = b["S2"]["x"]
    assert np.all(x[:, :, :10][np.broadcast_to(x[:, :, 10:11] == 0, x[:, :, :10].shape)] == 0)


def test_loss_decreases_on_real_windows(trained, stack_dir):
    from models.train.loop import load_checkpoint, stage_dir

    cfg, summaries = trained
    rows = list(csv.DictReader(open(os.path.join(stage_dir(cfg, "s2"), "log.csv"))))
    train = [float(r["loss"]) for r in rows if r["split"] == "train"]
    val = [float(r["centre_mae"]) for r in rows if r["split"] == "val"]
    assert train[-1] < 0.6 * train[0], train
    assert min(val) < val[0] or val[-1] < 0.1
    best = load_checkpoint(os.path.join(stage_dir(cfg, "s2"), "best.pt"))
    assert best["score"] == pytest.approx(min(val))
    assert os.path.isfile(os.path.join(stage_dir(cfg, "s2"), "loss_curve.png"))
    assert summaries["fusion"]["steps"] == 10


def test_resume_gives_identical_continuation(tmp_path, stack_dir):
    from models.train.loop import load_checkpoint, stage_dir, train_stage

    straight = tiny_config(tmp_path / "a", stack_dir, steps=6, eval_every=3, val_windows=8)
    train_stage("s1", straight, quiet=True)
    split = tiny_config(tmp_path / "b", stack_dir, steps=6, eval_every=3, val_windows=8)
    train_stage("s1", split, quiet=True, max_steps=3)
    train_stage("s1", split, quiet=True, resume=True)
    a = load_checkpoint(os.path.join(stage_dir(straight, "s1"), "last.pt"))
    b = load_checkpoint(os.path.join(stage_dir(split, "s1"), "last.pt"))
    assert json.loads(b["state"])["step"] == 6
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name


def test_export_of_the_trained_run_passes_the_checks_on_the_real_chip(trained, tmp_path):
    from models.runtime import load_models
    from models.train.export import run_export

    cfg, _ = trained
    report = run_export(cfg, str(tmp_path / "onnx"), threads=1)
    p = report["parity"]
    assert p["onnx_vs_torch"] <= 1e-5 and p["dense_vs_window"] <= 1e-4 and p["points"] >= 30
    assert 0 < report["cost_dense_per_pixel_date"]["total_mflop"] < 1.0
    assert report["cost_window_macs"] > 20 * report["cost_dense_per_pixel_date"]["total_macs"]
    models = load_models(str(tmp_path / "onnx"), threads=1)
    assert "belgium_0000280849BAC91C" in models.metadata["fusion"]["cameo_training_data"]
    ck = torch.load(os.path.join(cfg["runs_dir"], cfg["name"], "s2", "best.pt"), weights_only=True)
    assert np.allclose(models.s2.mean, ck["stats"]["S2"]["mean"])
    # the model-card evaluation runs on the exported models over every valid pixel-date
    from models.train.evaluate import evaluate_run
    ev = evaluate_run(cfg, models_dir=str(tmp_path / "onnx"), figures=False, max_pixel_dates=3000)
    assert ev["dates"] == 41 and ev["valid_s2_pixel_dates"] > 0.8 * 41 * 64 * 64 and ev["evaluated_pixel_dates"] == 3000
    for key in ("s2_autoencoder_mae_reflectance", "s1_autoencoder_mae_db", "fusion_s2_mae_reflectance"):
        assert 0 < ev[key]["mean"] < 50, (key, ev[key])


def _torch_has_libuv():
    """pip's torch has libuv; Debian 13's torch 2.6 is built without it."""
    import torch.distributed

    try:
        torch.distributed.TCPStore("127.0.0.1", 0, 1, True, use_libuv=True)
    except RuntimeError:
        return False
    return True


def _run_two_ranks(args, env):
    """Two training processes joined as torchrun joins them (RANK, WORLD_SIZE, MASTER_*).

    Used where torchrun cannot run: Debian 13's torch lacks libuv, which torchrun's own
    TCP store always asks for; the ranks' env:// rendezvous honours USE_LIBUV=0.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ranks = [subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=dict(env, USE_LIBUV="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                                                  WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                                                  LOCAL_WORLD_SIZE="2"))
             for rank in range(2)]
    outputs = [rank.communicate(timeout=300)[0] for rank in ranks]
    return subprocess.CompletedProcess(args, max(rank.returncode for rank in ranks), "", "\n".join(outputs))


def test_ddp_two_processes_on_cpu(tmp_path, stack_dir):
    cfg = tiny_config(tmp_path, stack_dir, steps=4, eval_every=2, val_windows=8)
    path = tmp_path / "ddp.json"
    path.write_text(json.dumps(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    train = ["-m", "models.train", "s1", "--config", str(path)]
    if _torch_has_libuv():  # as the README says to run it
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               *train], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    else:
        proc = _run_two_ranks(train, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "bundled" / "s1" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4


def test_configs_and_cli():
    paper, bundled = load_config("paper"), load_config("bundled")
    assert paper["s2"]["width"] == 149 and paper["s2"]["token_dim"] == 256 and paper["s2"]["train"]["lr"] == 1e-4
    assert bundled["s2"]["loss"] == {"mae": 0.665, "sam": 0.315, "ssim": 0.02, "centre_weight": 1.75, "context": True}
    assert bundled["s1"]["loss"]["centre_weight"] == 1.5
    with pytest.raises(KeyError, match="widht"):
        default_config({"s2": {"widht": 3}})
    out = subprocess.run([sys.executable, "-m", "models.train", "--help"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "{s2,s1,fusion,gpp,export,evaluate}" in out.stdout
