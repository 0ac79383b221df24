"""The sha256 manifest of the bundled ONNX models, and checks against it.

The manifest is a `SHA256SUMS` file beside the models, in the format `sha256sum`
writes, so a user can also check it by hand: `cd models/onnx && sha256sum -c SHA256SUMS`.
A model is used only if its digest matches: a truncated download or a file swapped
for another one is refused instead of producing silently wrong embeddings.
"""

import hashlib
import os
from dataclasses import dataclass

from .errors import CameoError
from .rasterio_io import atomic_output

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")
MANIFEST_NAME = "SHA256SUMS"


class ModelIntegrityError(CameoError):
    """A bundled model is missing or does not match its manifest entry."""


@dataclass(frozen=True)
class ModelFileStatus:
    name: str
    expected_sha256: str  # "" when the file is not listed in the manifest
    actual_sha256: str  # "" when the file does not exist
    status: str  # "ok", "mismatch", "missing" (listed, no file) or "unlisted" (file, no entry)

    @property
    def ok(self):
        return self.status == "ok"


def sha256_of(path, chunk_size=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(models_dir=MODELS_DIR):
    """File name -> expected sha256, from `SHA256SUMS` ({} when there is none yet)."""
    path = os.path.join(models_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        return {}
    entries = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise ModelIntegrityError(
                    f"{path}, line {number}: expected '<sha256>  <file name>', got {line!r}.")
            entries[parts[1].lstrip("*")] = parts[0].lower()
    return entries


def write_manifest(models_dir, file_names):
    """Write `SHA256SUMS` for `file_names` in `models_dir` (used by the model export)."""
    lines = [f"{sha256_of(os.path.join(models_dir, name))}  {name}\n" for name in sorted(file_names)]
    path = os.path.join(models_dir, MANIFEST_NAME)
    with atomic_output(models_dir, guard=False) as out, open(out.stage(path), "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return path


def verify_models(models_dir=MODELS_DIR):
    """Status of every model listed in the manifest or present as a `.onnx` file."""
    expected = read_manifest(models_dir)
    present = set()
    if os.path.isdir(models_dir):
        present = {name for name in os.listdir(models_dir) if name.endswith(".onnx")}
    statuses = []
    for name in sorted(set(expected) | present):
        path = os.path.join(models_dir, name)
        actual = sha256_of(path) if os.path.isfile(path) else ""
        if name not in expected:
            status = "unlisted"
        elif not actual:
            status = "missing"
        else:
            status = "ok" if actual == expected[name] else "mismatch"
        statuses.append(ModelFileStatus(name, expected.get(name, ""), actual, status))
    return statuses


def verified_model_path(name, models_dir=MODELS_DIR):
    """Path of bundled model `name` after checking it against the manifest."""
    path = os.path.join(models_dir, name)
    bundled = os.path.abspath(models_dir) == os.path.abspath(MODELS_DIR)
    # The fix differs: bundled models come with the plugin, a model folder from models/train.
    fix = ("Reinstall the CAMEO plugin to get the bundled models." if bundled else
           "Use a complete model folder exported by models/train (python -m models.train export), "
           "or leave the model folder empty to use the bundled models.")
    expected = read_manifest(models_dir).get(name)
    if expected is None:
        raise ModelIntegrityError(
            f"Model {name} is not listed in {os.path.join(models_dir, MANIFEST_NAME)}. {fix}")
    if not os.path.isfile(path):
        raise ModelIntegrityError(
            f"Model file {path} is missing. {fix}")
    actual = sha256_of(path)
    if actual != expected:
        raise ModelIntegrityError(
            f"Model file {path} does not match its sha256 in the manifest "
            f"(expected {expected[:12]}..., found {actual[:12]}...): it is damaged or was "
            f"replaced. {fix}")
    return path
