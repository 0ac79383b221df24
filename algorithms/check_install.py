"""cameo:checkinstall - report what CAMEO finds: software versions, models, sample data."""

import json

from osgeo import gdal
from qgis.core import (
    Qgis,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputString,
)

from ..models.environment import (
    OPTIONAL_PACKAGES,
    install_command,
    missing_optional_packages,
    missing_packages,
    runtime_report,
)
from ..models.manifest import MODELS_DIR, verify_models
from ..models.sample_data import sample_data_dir, sample_data_found
from .base import CameoAlgorithm


class CheckInstallation(CameoAlgorithm):
    NAME = "checkinstall"
    DISPLAY_NAME = "Check installation"
    GROUP = "utilities"
    QGIS_VERSION = "QGIS_VERSION"
    GDAL_VERSION = "GDAL_VERSION"
    ONNXRUNTIME_PROVIDERS = "ONNXRUNTIME_PROVIDERS"
    MISSING_PACKAGES = "MISSING_PACKAGES"
    INSTALL_COMMAND = "INSTALL_COMMAND"
    MISSING_OPTIONAL_PACKAGES = "MISSING_OPTIONAL_PACKAGES"
    OPTIONAL_INSTALL_COMMAND = "OPTIONAL_INSTALL_COMMAND"
    MODELS_OK = "MODELS_OK"
    MODELS = "MODELS"
    SAMPLE_DATA_DIR = "SAMPLE_DATA_DIR"
    SAMPLE_DATA_FOUND = "SAMPLE_DATA_FOUND"
    PYTHON_VERSION = "PYTHON_VERSION"
    NUMPY_VERSION = "NUMPY_VERSION"
    ONNXRUNTIME_VERSION = "ONNXRUNTIME_VERSION"
    RASTERIO_VERSION = "RASTERIO_VERSION"
    PYPROJ_VERSION = "PYPROJ_VERSION"
    SHAPELY_VERSION = "SHAPELY_VERSION"
    SKLEARN_VERSION = "SKLEARN_VERSION"  # optional
    MATPLOTLIB_VERSION = "MATPLOTLIB_VERSION"  # optional
    # Version output -> key of the runtime report (see models.environment.runtime_report).
    VERSION_OUTPUTS = {
        PYTHON_VERSION: "python", NUMPY_VERSION: "numpy", ONNXRUNTIME_VERSION: "onnxruntime",
        RASTERIO_VERSION: "rasterio", PYPROJ_VERSION: "pyproj", SHAPELY_VERSION: "shapely",
        SKLEARN_VERSION: "sklearn", MATPLOTLIB_VERSION: "matplotlib",
    }
    HELP = (
        "Reports what CAMEO needs and finds: the versions of QGIS, GDAL, numpy, "
        "onnxruntime (with its execution providers, e.g. CUDA), rasterio, pyproj and "
        "shapely, and of the optional scikit-learn (needed by Cluster embeddings and Classify "
        "from labelled polygons only) and matplotlib (the pixel inspector); whether every bundled model file matches its sha256 in the manifest; "
        "and whether the sample data directory ($CAMEO_DATA, default ../shared/data) is "
        "reachable. Missing packages are listed with the command that installs them for "
        "the Python QGIS uses (a missing optional package separately). Run it first when something does not work, and attach its "
        "log to a bug report.",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addOutput(QgsProcessingOutputString(self.QGIS_VERSION, "QGIS version"))
        self.addOutput(QgsProcessingOutputString(self.GDAL_VERSION, "GDAL version (QGIS)"))
        for name, key in self.VERSION_OUTPUTS.items():
            self.addOutput(QgsProcessingOutputString(name, f"{key} version"))
        self.addOutput(QgsProcessingOutputString(self.ONNXRUNTIME_PROVIDERS,
                                                 "ONNX Runtime execution providers"))
        self.addOutput(QgsProcessingOutputString(self.MISSING_PACKAGES, "Missing packages"))
        self.addOutput(QgsProcessingOutputString(self.INSTALL_COMMAND,
                                                 "Command that installs the missing packages"))
        self.addOutput(QgsProcessingOutputString(self.MISSING_OPTIONAL_PACKAGES, "Missing optional packages"))
        self.addOutput(QgsProcessingOutputString(self.OPTIONAL_INSTALL_COMMAND,
                                                 "Command that installs the missing optional packages"))
        self.addOutput(QgsProcessingOutputBoolean(self.MODELS_OK,
                                                  "All bundled models match the manifest"))
        self.addOutput(QgsProcessingOutputString(self.MODELS, "Bundled models (JSON)"))
        self.addOutput(QgsProcessingOutputString(self.SAMPLE_DATA_DIR, "Sample data directory"))
        self.addOutput(QgsProcessingOutputBoolean(self.SAMPLE_DATA_FOUND, "Sample data found"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        report = runtime_report()
        missing = missing_packages()
        optional = missing_optional_packages()
        models = verify_models()
        results = {
            self.QGIS_VERSION: Qgis.version(),
            self.GDAL_VERSION: gdal.__version__,
            self.ONNXRUNTIME_PROVIDERS: ",".join(report["onnxruntime_providers"]),
            self.MISSING_PACKAGES: ",".join(missing),
            self.INSTALL_COMMAND: install_command(missing) if missing else "",
            self.MISSING_OPTIONAL_PACKAGES: ",".join(OPTIONAL_PACKAGES[name][0] for name in optional),
            self.OPTIONAL_INSTALL_COMMAND: install_command(optional) if optional else "",
            self.MODELS_OK: all(model.ok for model in models),
            self.MODELS: json.dumps([{"file": m.name, "status": m.status, "sha256": m.actual_sha256}
                                  for m in models]),
            self.SAMPLE_DATA_DIR: sample_data_dir(),
            self.SAMPLE_DATA_FOUND: sample_data_found(),
        }
        for name, key in self.VERSION_OUTPUTS.items():
            results[name] = report[key] or "not installed"

        feedback.pushInfo(f"QGIS {results[self.QGIS_VERSION]}, GDAL {results[self.GDAL_VERSION]}, "
                          f"Python {report['python']} ({report['python_executable']})")
        for name, key in self.VERSION_OUTPUTS.items():
            if key in OPTIONAL_PACKAGES:
                feedback.pushInfo(f"{OPTIONAL_PACKAGES[key][0]} (optional, for {OPTIONAL_PACKAGES[key][1]}): "
                                  f"{results[name]}")
            elif key != "python":
                feedback.pushInfo(f"{key}: {results[name]}")
        if report["rasterio_gdal"]:
            feedback.pushInfo(f"rasterio's GDAL: {report['rasterio_gdal']}")
        feedback.pushInfo("ONNX Runtime providers: " + (results[self.ONNXRUNTIME_PROVIDERS] or "none"))
        if missing:
            feedback.reportError("Missing packages: " + ", ".join(missing)
                                 + ". Install with: " + results[self.INSTALL_COMMAND])
        if optional:
            feedback.reportError("Missing optional packages: " + results[self.MISSING_OPTIONAL_PACKAGES]
                                 + ". Install with: " + results[self.OPTIONAL_INSTALL_COMMAND])
        feedback.pushInfo(f"Bundled models in {MODELS_DIR}: " + (
            ", ".join(f"{m.name} ({m.status})" for m in models) or "none yet"))
        for model in models:
            if not model.ok:
                feedback.reportError(f"Model {model.name}: {model.status} - reinstall the plugin.")
        feedback.pushInfo(f"Sample data: {results[self.SAMPLE_DATA_DIR]} "
                          + ("(found)" if results[self.SAMPLE_DATA_FOUND] else
                             "(not found; set CAMEO_DATA to its path)"))
        return results
