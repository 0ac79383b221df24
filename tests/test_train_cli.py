"""`python -m models.train ... --config` with a config it cannot use: one line on stderr,
exit status 2, no traceback (unknown key, missing file, malformed JSON)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "models.train", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("python -m models.train: error: --config "), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert proc.stdout == ""


def test_unknown_config_key(tmp_path):
    path = tmp_path / "typo.json"
    path.write_text('{"name": "typo", "s2": {"widht": 16}}', encoding="utf-8")
    assert_one_line_error(run_cli("s2", "--config", str(path)), str(path), "Unknown config key 's2.widht'")


def test_missing_config_file(tmp_path):
    path = tmp_path / "absent.json"
    assert_one_line_error(run_cli("s2", "--config", str(path)), str(path), "no such config file")


def test_missing_config_name():
    assert_one_line_error(run_cli("s2", "--config", "no_such_config_name"), "no such config file",
                          os.path.join("configs", "no_such_config_name.json"))


def test_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "broken", "s2": {', encoding="utf-8")
    assert_one_line_error(run_cli("s2", "--config", str(path)), str(path), "malformed JSON")
