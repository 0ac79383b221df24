"""The plugin inside a real QgsApplication: provider, algorithms, unload, dialog."""

import json

import numpy
import onnxruntime
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsApplication, QgsProcessingException, QgsSettings
from qgis.PyQt.QtWidgets import QApplication, QDialog, QDialogButtonBox

from onnx_models import write_affine_model


@pytest.fixture
def registry(qgis_app):
    return QgsApplication.processingRegistry()


def test_provider_is_registered_with_its_algorithms(registry):
    provider = registry.providerById("cameo")
    assert provider is not None
    assert provider.name() == "CAMEO"
    assert not provider.icon().isNull()
    ids = sorted(algorithm.id() for algorithm in provider.algorithms())
    assert ids == ["cameo:checkinstall", "cameo:classify", "cameo:cluster", "cameo:embed", "cameo:embeddingrgb",
                   "cameo:modelinfo", "cameo:predictgpp", "cameo:preparestack", "cameo:sentinel_to_gpp",
                   "cameo:similarity"]
    checkinstall = registry.algorithmById("cameo:checkinstall")
    assert (checkinstall.displayName(), checkinstall.group(), checkinstall.groupId()) == (
        "Check installation", "Utilities", "utilities")


def test_checkinstall_reports_the_installed_versions(qgis_app, data_dir):
    results = processing.run("cameo:checkinstall", {})
    assert results["NUMPY_VERSION"] == numpy.__version__
    assert results["ONNXRUNTIME_VERSION"] == onnxruntime.__version__
    assert results["GDAL_VERSION"] == gdal.__version__
    assert results["ONNXRUNTIME_PROVIDERS"].split(",") == onnxruntime.get_available_providers()
    assert results["MISSING_PACKAGES"] == "" and results["INSTALL_COMMAND"] == ""
    assert results["SAMPLE_DATA_FOUND"] is True
    assert results["SAMPLE_DATA_DIR"] == str(data_dir)
    assert results["MODELS_OK"] is True


def test_modelinfo_reads_a_real_onnx_file(qgis_app, tmp_path):
    path = write_affine_model(tmp_path / "model.onnx", {"bands": "VV,VH"})
    results = processing.run("cameo:modelinfo", {"INPUT": str(path)})
    assert json.loads(results["METADATA"]) == {"bands": "VV,VH"}
    assert json.loads(results["INPUTS"])[0]["shape"] == ["batch", 3]


def test_modelinfo_refuses_a_non_onnx_file_with_a_processing_error(qgis_app, tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("not a model")
    with pytest.raises(QgsProcessingException, match="is not a readable ONNX model"):
        processing.run("cameo:modelinfo", {"INPUT": str(path)})


def test_unload_removes_the_provider_and_init_brings_it_back(qgis_app, registry):
    plugin = qgis_app.cameo_plugin
    plugin.unload()
    assert registry.providerById("cameo") is None
    plugin.initProcessing()
    assert registry.providerById("cameo").algorithms()


def test_headless_init_gui_does_not_need_iface(qgis_app, registry):
    import cameo

    plugin = cameo.classFactory(None)
    plugin.initGui()  # as QGIS would; with iface None it must not touch any window
    # The session's provider already holds the id: the second one is refused, not doubled.
    assert [p.id() for p in registry.providers()].count("cameo") == 1
    plugin.unload()
    assert registry.providerById("cameo") is not None


def test_dependency_notice_comes_once_per_set_of_missing_packages(qgis_app, hide_packages):
    import sys

    from cameo.plugin import NOTICE_SETTING

    plugin = qgis_app.cameo_plugin
    QgsSettings().remove(NOTICE_SETTING)
    hidden = str(hide_packages("onnxruntime"))
    saved = sys.modules.pop("onnxruntime")
    sys.path.insert(0, hidden)
    try:
        assert plugin.pending_dependency_notice() == ["onnxruntime"]
        assert plugin.pending_dependency_notice() == []  # told already
    finally:
        sys.path.remove(hidden)
        sys.modules["onnxruntime"] = saved
    assert plugin.pending_dependency_notice() == []  # nothing missing: nothing to tell


def test_missing_dependencies_dialog_offers_the_command_to_copy(qgis_app):
    from cameo.ui.missing_dependencies import MissingDependenciesDialog

    command = '/usr/bin/python3 -m pip install --user onnxruntime "numpy==1.24.2"'
    dialog = MissingDependenciesDialog(["onnxruntime"], command)
    assert "<b>onnxruntime</b>" in dialog.message.text()
    assert dialog.command.text() == command and dialog.command.isReadOnly()
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == command
    assert dialog.copy_button.text() == "Copied"
    close = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close)
    assert close.text().replace("&", "") == "Close"
    dialog.show()
    close.click()  # what the user does: the dialog ends as rejected (closed, nothing run)
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Rejected


def test_missing_dependencies_dialog_runs_modal_with_exec(qgis_app):
    from qgis.PyQt.QtCore import QTimer

    from cameo.ui.missing_dependencies import MissingDependenciesDialog

    dialog = MissingDependenciesDialog(["rasterio"], "apt install python3-rasterio")
    QTimer.singleShot(0, dialog.copy_button.click)
    QTimer.singleShot(0, dialog.reject)  # as the Close button does, once the loop runs
    assert dialog.exec() == QDialog.DialogCode.Rejected  # exec(), as in PyQt6: no exec_()
    assert QApplication.clipboard().text() == "apt install python3-rasterio"
