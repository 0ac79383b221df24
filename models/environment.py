"""What the Python running CAMEO has installed, and how to install what it lacks.

Qt-free: used by the QGIS algorithms, the command line tools and the tests. The plugin
must load in a QGIS whose Python lacks the runtime packages, so nothing here imports
them at module level; each is probed on demand.
"""

import importlib
import os
import platform
import sys

from .errors import CameoError

# Import name -> name on PyPI, for every package CAMEO needs at run time.
RUNTIME_PACKAGES = {
    "numpy": "numpy",
    "onnxruntime": "onnxruntime",
    "rasterio": "rasterio",
    "pyproj": "pyproj",
    "shapely": "shapely",
}
# Import name -> (name on PyPI, what needs it): packages only some algorithms need. A missing
# one stops just those algorithms, with the same message and install command.
OPTIONAL_PACKAGES = {
    "sklearn": ("scikit-learn", "cameo:cluster and cameo:classify"),
    "matplotlib": ("matplotlib", "the pixel inspector"),
}


def pip_name(import_name):
    if import_name in OPTIONAL_PACKAGES:
        return OPTIONAL_PACKAGES[import_name][0]
    return RUNTIME_PACKAGES.get(import_name, import_name)


class MissingDependencyError(CameoError):
    """A runtime package is not importable; the message says how to install it."""

    def __init__(self, packages):
        self.packages = list(packages)
        names = ", ".join(pip_name(name) for name in self.packages)
        plural = "s" if len(self.packages) > 1 else ""
        uses = [OPTIONAL_PACKAGES[name][1] for name in self.packages if name in OPTIONAL_PACKAGES]
        purpose = f" (for {', '.join(uses)})" if uses else ""
        super().__init__(
            f"CAMEO needs the Python package{plural} {names}{purpose}, not installed in the "
            f"Python that QGIS uses ({python_executable()}). Install with: "
            f"{install_command(self.packages)} - then restart QGIS."
        )


def package_version(import_name):
    """Version string of an importable package, or None if it cannot be imported.

    Any exception counts as "not usable": a package built against another numpy
    raises ImportError or even AttributeError while importing.
    """
    try:
        module = importlib.import_module(import_name)
    except Exception:  # noqa: BLE001 - a broken install is as good as a missing one
        return None
    return str(getattr(module, "__version__", "unknown"))


def missing_packages(import_names=None):
    """The import names among `import_names` (default: all runtime packages) that fail."""
    names = RUNTIME_PACKAGES if import_names is None else import_names
    return [name for name in names if package_version(name) is None]


def missing_optional_packages():
    """The import names of the optional packages that fail to import."""
    return missing_packages(OPTIONAL_PACKAGES)


def require(*import_names):
    """Raise MissingDependencyError naming every package of `import_names` that is missing."""
    missing = missing_packages(import_names)
    if missing:
        raise MissingDependencyError(missing)


def python_executable():
    """The interpreter that runs this code, also when it is embedded in QGIS.

    Inside QGIS `sys.executable` is the QGIS binary or whatever `python3` comes first on
    PATH (e.g. a pyenv shim), not the embedded Python; trust it only when it lives in
    this Python's prefix, else use the interpreter found in that prefix.
    """
    exe = sys.executable or ""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix)}
    if (os.path.basename(exe).lower().startswith("python")
            and any(os.path.abspath(exe).startswith(p + os.sep) for p in prefixes)):
        return exe
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        os.path.join(sys.exec_prefix, "python.exe"),  # Windows / OSGeo4W
        os.path.join(sys.exec_prefix, "bin", f"python{version}"),
        os.path.join(sys.exec_prefix, "bin", "python3"),
    ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return "python3"


def _numpy_pin():
    """Hold the numpy that QGIS ships (1.2x or 2.x): PyQGIS and GDAL are compiled against it.

    Asking pip for exactly the installed version makes it keep that numpy, and fail
    rather than up- or downgrade it for a package that would need another one. Without
    an importable numpy there is nothing to hold (numpy itself is then in the list).
    """
    version = package_version("numpy")
    return f' "numpy=={version}"' if version else ""


def install_command(import_names):
    """One shell command that installs `import_names` for this Python, numpy left alone."""
    pip_names = " ".join(pip_name(name) for name in import_names)
    python = python_executable()
    if platform.system() == "Windows":
        # Run in the OSGeo4W shell, where `python` is the interpreter QGIS embeds.
        return f"python -m pip install {pip_names}{_numpy_pin()}"
    user_flag = "" if _in_virtualenv() else " --user"
    # Debian 12 and Ubuntu 23.04+ mark the system Python "externally managed" (PEP 668).
    managed = os.path.isfile(
        os.path.join(sys.base_prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
                     "EXTERNALLY-MANAGED"))
    break_flag = " --break-system-packages" if managed and not _in_virtualenv() else ""
    quoted = f'"{python}"' if " " in python else python
    return f"{quoted} -m pip install{user_flag}{break_flag} {pip_names}{_numpy_pin()}"


def _in_virtualenv():
    return sys.prefix != sys.base_prefix


def onnxruntime_providers():
    """Execution providers ONNX Runtime offers here (e.g. CUDAExecutionProvider), or []."""
    try:
        import onnxruntime
    except Exception:  # noqa: BLE001
        return []
    return list(onnxruntime.get_available_providers())


def runtime_report():
    """Versions of Python and of every runtime package (None = not importable)."""
    report = {"python": platform.python_version(), "python_executable": python_executable()}
    for name in list(RUNTIME_PACKAGES) + list(OPTIONAL_PACKAGES):
        report[name] = package_version(name)
    report["onnxruntime_providers"] = onnxruntime_providers()
    try:
        import rasterio
        report["rasterio_gdal"] = rasterio.__gdal_version__
    except Exception:  # noqa: BLE001
        report["rasterio_gdal"] = None
    return report
