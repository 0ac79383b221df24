"""Shared fixtures: the real sample data, a real QgsApplication, real qgis_process.

Nothing here is mocked. QGIS runs offscreen; the plugin is loaded from this checkout
through a `cameo` symlink in a temporary plugins folder, and qgis_process runs in a
temporary QGIS profile so the tests never touch the user's own.
"""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
QGIS_PYTHON_PLUGINS = "/usr/share/qgis/python/plugins"  # the core Processing plugin
if QGIS_PYTHON_PLUGINS not in sys.path:
    sys.path.append(QGIS_PYTHON_PLUGINS)  # so test modules can `import processing`


@pytest.fixture(scope="session")
def data_dir():
    """The real sample data (../shared/data or $CAMEO_DATA); a test fails without it."""
    from models.sample_data import sample_data_dir

    path = Path(sample_data_dir())
    if not (path / "chips").is_dir():
        pytest.fail(f"Sample data not found at {path}: set CAMEO_DATA to the shared data folder.")
    return path


@pytest.fixture(scope="session")
def plugins_dir(tmp_path_factory):
    """A plugins folder holding `cameo` -> this checkout, as `make setup` links it."""
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "cameo").symlink_to(REPO, target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def qgis_app(plugins_dir):
    """A real QgsApplication with Processing initialised and the CAMEO plugin loaded."""
    from qgis.core import QgsApplication

    sys.path.insert(0, str(plugins_dir))
    app = QgsApplication([], True)  # GUI enabled (offscreen) so widgets can be tested
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    import cameo

    plugin = cameo.classFactory(None)
    plugin.initProcessing()
    app.cameo_plugin = plugin
    yield app
    plugin.unload()


def venv_site_packages():
    return sysconfig.get_paths()["purelib"]


@pytest.fixture(scope="session")
def qgis_process_env(plugins_dir, tmp_path_factory):
    """Environment for qgis_process.bin: offscreen, own profile, plugin enabled."""
    env = dict(os.environ)
    env.update({
        "QT_QPA_PLATFORM": "offscreen",
        "QGIS_PLUGINPATH": str(plugins_dir),
        "XDG_DATA_HOME": str(tmp_path_factory.mktemp("qgis-profile")),
        "XDG_RUNTIME_DIR": str(tmp_path_factory.mktemp("runtime")),
        "PYTHONPATH": venv_site_packages(),
    })
    subprocess.run(["qgis_process.bin", "plugins", "enable", "cameo"], env=env, check=True,
                   capture_output=True, timeout=120)
    return env


@pytest.fixture(scope="session")
def qgis_process(qgis_process_env):
    """Run `qgis_process.bin ARGS...`; returns the CompletedProcess (text mode).

    `env` entries are added to the session's environment; `python_path_first` is put
    in front of PYTHONPATH (e.g. a folder that hides a package).
    """

    def run(*args, env=None, python_path_first=None, check=True, timeout=600):
        full_env = dict(qgis_process_env)
        full_env.update(env or {})
        if python_path_first:
            full_env["PYTHONPATH"] = f"{python_path_first}:{full_env['PYTHONPATH']}"
        done = subprocess.run(["qgis_process.bin", *map(str, args)], env=full_env,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"qgis_process {' '.join(map(str, args))} failed "
                                 f"({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    return run


@pytest.fixture
def hide_packages(tmp_path):
    """A folder that makes the given packages unimportable when first on PYTHONPATH."""

    def make(*names):
        for name in names:
            package = tmp_path / "hidden" / name
            package.mkdir(parents=True)
            (package / "__init__.py").write_text(
                f"raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n")
        return tmp_path / "hidden"

    return make


def prepare_chip(data_dir, name, folder):
    """S2 + S1 stacks of a real sample chip (64 x 64 px), dates >= 97 % clear."""
    from models.stack import prepare_stack

    chip = data_dir / "chips" / name
    return prepare_stack(sorted(str(p) for p in chip.glob("S2_*.nc")), str(folder),
                         s1=sorted(str(p) for p in chip.glob("S1_*.nc")), min_valid_fraction=0.97).outputs()


@pytest.fixture(scope="session")
def belgian_stacks(data_dir, tmp_path_factory):
    """S2 + S1 stacks of the real Belgian training chip (64 x 64 px), dates >= 97 % clear."""
    return prepare_chip(data_dir, "belgium_00002806639B424A", tmp_path_factory.mktemp("belgian-stack"))


@pytest.fixture(scope="session")
def validation_stacks(data_dir, tmp_path_factory):
    """S2 + S1 stacks of the real Belgian validation chip (64 x 64 px, 26 dates >= 97 % clear)."""
    return prepare_chip(data_dir, "belgium_0000280849BAC91C", tmp_path_factory.mktemp("validation-stack"))


@pytest.fixture(scope="session")
def validation_embeddings(validation_stacks, tmp_path_factory):
    """The bundled models' embeddings of the whole validation chip (an EmbeddingRun; about 5 s)."""
    from models.embedding.job import embed_stacks

    return embed_stacks(validation_stacks["S2_STACK"], str(tmp_path_factory.mktemp("validation-emb") / "emb"),
                        s1_path=validation_stacks["S1_STACK"], threads=1)


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory):
    """Tiny random-weight CAMEO models exported to ONNX with manifest (fast to run).

    The properties tested with them (exactness, tiling, I/O) are structural: they must
    hold for any weights, the bundled ones included.
    """
    from models.train.export import export_models
    from train_helpers import tiny_models

    cfg, s2, s1, fusion, stats = tiny_models()
    folder = tmp_path_factory.mktemp("tiny-models")
    export_models(cfg, s2, s1, fusion, stats, str(folder), training_summary="tiny random weights (tests)")
    return folder
