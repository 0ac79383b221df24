"""The sha256 manifest of bundled models: written, verified, and refusing tampering."""

import hashlib
import subprocess

import pytest

from models.manifest import (
    MODELS_DIR,
    ModelIntegrityError,
    read_manifest,
    verified_model_path,
    verify_models,
    write_manifest,
)


@pytest.fixture
def models_dir(tmp_path):
    (tmp_path / "a.onnx").write_bytes(b"model a")
    (tmp_path / "b.onnx").write_bytes(b"model b" * 1000)
    write_manifest(str(tmp_path), ["a.onnx", "b.onnx"])
    return tmp_path


def test_manifest_holds_the_sha256_of_each_file(models_dir):
    assert read_manifest(str(models_dir)) == {
        "a.onnx": hashlib.sha256(b"model a").hexdigest(),
        "b.onnx": hashlib.sha256(b"model b" * 1000).hexdigest(),
    }


def test_manifest_is_checkable_with_sha256sum(models_dir):
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=models_dir,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split("\n")[:2] == ["a.onnx: OK", "b.onnx: OK"]


def test_verify_reports_ok_mismatch_missing_and_unlisted(models_dir):
    (models_dir / "a.onnx").write_bytes(b"model A")  # one byte changed
    (models_dir / "b.onnx").unlink()
    (models_dir / "c.onnx").write_bytes(b"stray")
    assert {m.name: m.status for m in verify_models(str(models_dir))} == {
        "a.onnx": "mismatch", "b.onnx": "missing", "c.onnx": "unlisted"}


def test_verified_model_path_accepts_an_intact_model(models_dir):
    assert verified_model_path("b.onnx", str(models_dir)) == str(models_dir / "b.onnx")


def test_verified_model_path_refuses_a_changed_model(models_dir):
    (models_dir / "a.onnx").write_bytes(b"model A")
    with pytest.raises(ModelIntegrityError, match=r"a\.onnx does not match its sha256.*(Reinstall|exported by models/train)"):
        verified_model_path("a.onnx", str(models_dir))


def test_verified_model_path_refuses_an_unlisted_model(models_dir):
    (models_dir / "c.onnx").write_bytes(b"stray")
    with pytest.raises(ModelIntegrityError, match="c.onnx is not listed"):
        verified_model_path("c.onnx", str(models_dir))


def test_a_malformed_manifest_line_is_named(tmp_path):
    (tmp_path / "SHA256SUMS").write_text("not-a-digest  a.onnx\n")
    with pytest.raises(ModelIntegrityError, match="line 1"):
        read_manifest(str(tmp_path))


def test_bundled_models_match_their_manifest():
    statuses = verify_models(MODELS_DIR)
    assert [m for m in statuses if not m.ok] == []
