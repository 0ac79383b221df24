"""Security: only ONNX at runtime, no pickle, weights_only checkpoints, no shell, no network.

The plugin files are the ones `scripts/package.py` puts in the zip users install
(models/train, tests, benchmarks and scripts stay out), plus any not yet tracked.
"""

import os
import re
import subprocess
import sys

import pytest

from reliability_helpers import DATES, REPO, s1_series, s2_series, tiny_stacks

sys.path.insert(0, os.path.join(REPO, "scripts"))
from package import EXCLUDED_PREFIXES  # noqa: E402

SKIP_DIRS = {".git", ".venv", "__pycache__", "runs", "dist", ".pytest_cache", ".hypothesis"}


def plugin_python_files():
    files = []
    for folder, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in names:
            path = os.path.relpath(os.path.join(folder, name), REPO)
            if name.endswith(".py") and not path.startswith(EXCLUDED_PREFIXES):
                files.append(path)
    return sorted(files)


def _code_lines(path):
    """(number, line) of a Python file, comments and docstring-only lines included (strict)."""
    with open(os.path.join(REPO, path), encoding="utf-8") as handle:
        return list(enumerate(handle, start=1))


def test_the_plugin_files_include_the_runtime_and_exclude_training():
    files = plugin_python_files()
    assert "models/runtime/engine.py" in files and "algorithms/embed.py" in files
    assert not [f for f in files if f.startswith(("models/train/", "tests/"))]


PICKLE = re.compile(r"\bimport\s+(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\b|"
                    r"\bfrom\s+(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\s+import\b|"
                    r"\b(pickle|dill|cloudpickle|joblib|marshal)\.(loads?|dumps?)\(|"
                    r"\btorch\.load\(|allow_pickle\s*=\s*True|\bimport\s+torch\b|\bfrom\s+torch\b")


def test_no_pickle_and_no_torch_in_the_plugin():
    found = [f"{path}:{number}: {line.strip()}" for path in plugin_python_files()
             for number, line in _code_lines(path) if PICKLE.search(line)]
    assert found == []


def test_every_numpy_load_in_the_plugin_refuses_pickles():
    found = [f"{path}:{number}: {line.strip()}" for path in plugin_python_files()
             for number, line in _code_lines(path)
             if re.search(r"\bnp\.load\(|numpy\.load\(", line) and "allow_pickle=False" not in line]
    assert found == []


def test_no_model_file_other_than_onnx_ships_with_the_plugin():
    pickled = (".pt", ".pth", ".pkl", ".pickle", ".joblib", ".ckpt", ".npy", ".npz", ".h5", ".keras")
    found = []
    for folder, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in names:
            path = os.path.relpath(os.path.join(folder, name), REPO)
            if name.lower().endswith(pickled) and not path.startswith(EXCLUDED_PREFIXES):
                found.append(path)
    assert found == []
    onnx_dir = os.path.join(REPO, "models", "onnx")
    if os.path.isdir(onnx_dir):
        assert all(n.endswith(".onnx") or n == "SHA256SUMS" for n in os.listdir(onnx_dir))


def test_training_checkpoints_load_with_weights_only():
    calls = []
    for folder, _, names in os.walk(os.path.join(REPO, "models", "train")):
        for name in names:
            if name.endswith(".py"):
                path = os.path.relpath(os.path.join(folder, name), REPO)
                text = open(os.path.join(REPO, path), encoding="utf-8").read()
                calls += [(path, m.group(0)) for m in re.finditer(r"torch\.load\([^)]*\)", text)]
                assert not re.search(r"\bimport\s+pickle\b|pickle\.loads?\(", text), path
    assert calls, "the training code loads its checkpoints with torch.load"
    assert [c for c in calls if "weights_only=True" not in c[1]] == []


def test_weights_only_refuses_a_pickled_object(tmp_path):
    import torch

    from models.train.loop import load_checkpoint

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "PWNED"),))

    torch.save({"model": {}, "evil": Payload()}, tmp_path / "best.pt")
    with pytest.raises(Exception, match="weights_only|Unsupported global|WeightsUnpickler"):
        load_checkpoint(str(tmp_path / "best.pt"))
    assert not (tmp_path / "PWNED").exists()


SHELL = re.compile(r"shell\s*=\s*True|\bos\.system\(|\bos\.popen\(|\bos\.exec\w*\(|\bos\.spawn\w*\(|"
                   r"subprocess\.(getoutput|getstatusoutput)\(|QProcess")


def test_no_path_reaches_a_shell():
    found = [f"{path}:{number}: {line.strip()}" for path in plugin_python_files()
             for number, line in _code_lines(path) if SHELL.search(line)]
    assert found == []
    # Any subprocess the plugin starts gets an argument list, never a command string.
    calls = [f"{path}:{number}: {line.strip()}" for path in plugin_python_files()
             for number, line in _code_lines(path) if re.search(r"subprocess\.\w+\(\s*[\"'f]", line)]
    assert calls == []


def test_bundled_or_user_models_are_checked_before_onnxruntime_sees_them():
    # Every InferenceSession of the runtime is created from a path that went through the manifest.
    text = open(os.path.join(REPO, "models", "runtime", "engine.py"), encoding="utf-8").read()
    assert "verified_model_path(name, models_dir) if verify" in text
    assert re.findall(r"InferenceSession\((\w+)", text) == ["path"]


# ----------------------------------------------------------------------------- no network at runtime

NETWORK_SCRIPT = r"""
import json, socket, sys
attempts = []

def audit(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request",
                 "http.client.connect", "socket.sendto"):
        attempts.append(event)
        raise OSError("network disabled by the CAMEO security test: " + event)

sys.addaudithook(audit)
args = json.loads(sys.argv[1])
from models.stack import prepare_stack
from models.embedding.job import embed_stacks
from models.embedding.rgb import embedding_to_rgb
from models.onnx_info import describe_onnx
from models.environment import runtime_report
from models.manifest import verify_models
prepare_stack(args["s2"], args["out"] + "/stack", s1=args["s1"])
run = embed_stacks(args["out"] + "/stack/s2_stack.tif", args["out"] + "/emb",
                   s1_path=args["out"] + "/stack/s1_stack.tif", tile_size=32, models_dir=args["models"])
embedding_to_rgb(run.index_path, args["out"] + "/rgb.tif")
describe_onnx(args["models"] + "/cameo_fusion.onnx")
runtime_report(); verify_models()
print(json.dumps({"attempts": attempts, "files": len(run.files)}))
"""


def test_the_pipeline_runs_without_network_and_never_tries(tiny_models_dir, tmp_path):
    import json

    s2 = s2_series(str(tmp_path / "s2"), DATES)
    s1 = s1_series(str(tmp_path / "s1"), DATES)
    args = json.dumps({"s2": s2, "s1": s1, "out": str(tmp_path / "out"), "models": str(tiny_models_dir)})
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", NETWORK_SCRIPT, args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"attempts": [], "files": 4}


def test_qgis_process_runs_the_algorithms_in_a_network_namespace(qgis_process_env, tiny_models_dir, tmp_path):
    """checkinstall and embed through qgis_process with no network at all (only a loopback that is down)."""
    stacks = tiny_stacks(str(tmp_path / "stacks"))

    def run(*args):
        return subprocess.run(["unshare", "--net", "qgis_process.bin", *args], env=qgis_process_env,
                              capture_output=True, text=True, timeout=300)

    done = run("run", "cameo:checkinstall", "--json")
    assert done.returncode == 0 and '"MISSING_PACKAGES": ""' in done.stdout, done.stdout + done.stderr
    done = run("run", "cameo:embed", "--", f"S2_STACK={stacks['S2_STACK']}", f"MODELS={tiny_models_dir}",
               f"OUTPUT_FOLDER={tmp_path / 'emb'}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(os.listdir(tmp_path / "emb"))[-1] == "embeddings.vrt"
