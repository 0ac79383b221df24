"""The exit-status contract every command line shares (models/cli.py): 0 done, 2 bad input,
1 a run that failed with usable input, 130 cancelled; one line on stderr, no traceback.

The contract is tested on the runner itself with CAMEO's real error classes, and end to
end on what changed when the four command lines moved onto it: `python -m models.stack`
interrupted with Ctrl-C (before: a traceback), `python -m models.train gpp` running
through the one GPP regressor path."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from models.cli import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_DONE, EXIT_FAILED, run_cli
from models.distributed.errors import DistributedRunError
from models.environment import MissingDependencyError
from models.errors import CameoCancelled, CameoError, CameoInputError, CameoRunError, first_line
from test_stack_helpers import chip_files

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _raising(error):
    def main(argv):
        raise error
    return main


@pytest.mark.parametrize("error, status, start", [
    (CameoInputError("Band B8A is missing:\n  add it."), EXIT_BAD_INPUT, "prog: error: Band B8A is missing: add it."),
    (MissingDependencyError(["onnxruntime"]), EXIT_BAD_INPUT, "prog: error: CAMEO needs the Python package onnxruntime,"),
    (CameoError("A model file does not match SHA256SUMS."), EXIT_BAD_INPUT,
     "prog: error: A model file does not match SHA256SUMS."),
    (CameoRunError("Export check FAILED: {...}"), EXIT_FAILED, "prog: error: Export check FAILED: {...}"),
    (DistributedRunError("Tile 3 killed its worker."), EXIT_FAILED, "prog: error: Tile 3 killed its worker."),
    (CameoCancelled("Cancelled by the user."), EXIT_CANCELLED, "prog: cancelled: Cancelled by the user."),
    (KeyboardInterrupt(), EXIT_CANCELLED, "prog: cancelled: interrupted"),
])
def test_each_error_class_has_its_exit_status_and_one_line(capsys, error, status, start):
    assert run_cli(_raising(error), [], prog="prog") == status
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start) and captured.out == ""


def test_done_is_0_and_a_bug_keeps_its_traceback(capsys):
    assert run_cli(lambda argv: print("result"), []) == EXIT_DONE
    assert capsys.readouterr().out == "result\n"
    with pytest.raises(ZeroDivisionError):  # not CAMEO's: Python prints the traceback, exit 1
        run_cli(lambda argv: 1 / 0, [])


def test_no_prog_gives_the_bare_error_line(capsys):
    assert run_cli(_raising(CameoInputError("bad")), []) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "error: bad\n"


@pytest.mark.parametrize("error, expected", [
    (OSError("`x.tif' not recognized as a supported file format.\nmore detail"),
     "`x.tif' not recognized as a supported file format."),
    (RuntimeError(""), "RuntimeError"),
    (ValueError("  \n  "), "ValueError"),
    (RuntimeError("y" * 300), "y" * 200),
])
def test_first_line_of_an_error(error, expected):
    assert first_line(error) == expected


def test_ctrl_c_stops_the_stack_command_with_130_one_line_and_nothing_written(data_dir, tmp_path):
    s2, s1 = chip_files(data_dir)
    out = tmp_path / "out"
    with open(tmp_path / "stderr.txt", "w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "models.stack", "--s2", *s2, "--s1", *s1, "--output-folder", str(out)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal, also when
        # the suite itself runs in the background (a shell then starts it with SIGINT ignored)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not os.path.isdir(out):
            time.sleep(0.05)  # the output folder appears once the inputs are read and checked
        time.sleep(0.3)
        assert process.poll() is None, "the run ended before the test could interrupt it"
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)
        errors.seek(0)
        lines = [line for line in errors.read().splitlines() if line.strip()]
    assert process.returncode == EXIT_CANCELLED
    assert lines[-1] == "cancelled: interrupted" and not any("Traceback" in line for line in lines)
    assert not out.exists() or os.listdir(out) == []  # no stack, no hidden staging files


def test_train_gpp_stage_fits_the_transformer_and_reports_its_validation_rmse(tmp_path):
    torch = pytest.importorskip("torch")
    from models.train.config import default_config
    from models.train.gpp_small import Standardised, build, predict

    rng = np.random.default_rng(0)
    x, val_x = rng.random((64, 90, 7), np.float32), rng.random((16, 90, 7), np.float32)
    y, val_y = 8 * rng.random(64, np.float32), 8 * rng.random(16, np.float32)
    np.savez(tmp_path / "windows.npz", x=x, y=y, val_x=val_x, val_y=val_y)
    done = subprocess.run([sys.executable, "-m", "models.train", "gpp", "--data", str(tmp_path / "windows.npz"),
                           "--max-steps", "5", "--runs-dir", str(tmp_path / "runs")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_DONE, done.stderr
    import json

    summary = json.loads(done.stdout)
    cfg = default_config()
    g = cfg["gpp"]
    spec = {"kind": "transformer", **{k: g[k] for k in ("width", "layers", "heads", "ffn", "head_hidden")}}
    model = Standardised(build(spec, 7, g["window_days"]), np.zeros(7), np.ones(7))
    model.load_state_dict(torch.load(os.path.join(summary["dir"], "best.pt"), weights_only=True)["model"])
    model.eval()
    again = float(np.sqrt(np.mean((predict(model, val_x) - val_y) ** 2)))
    assert summary["steps"] == 5 and summary["val_rmse"] == pytest.approx(again, rel=1e-5)
    # the input standardisation saved with the weights is the training set's
    np.testing.assert_allclose(model.mean.numpy(), x.reshape(-1, 7).mean(0), rtol=1e-5)


def test_train_gpp_stage_without_data_is_exit_2():
    pytest.importorskip("torch")
    done = subprocess.run([sys.executable, "-m", "models.train", "gpp"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == EXIT_BAD_INPUT and "gpp needs --data" in done.stderr
