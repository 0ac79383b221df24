"""Write resources/sentinel_to_gpp.model3: the graphical model cameo:preparestack -> cameo:embed -> cameo:predictgpp.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_gpp_model.py

Built with the PyQGIS modeler API (what the graphical modeler saves), so the file is exactly
what QGIS writes; open it in the modeler to edit it. The plugin's provider adds it to the
Processing toolbox (group Pipelines) as cameo:sentinel_to_gpp.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "resources", "sentinel_to_gpp.model3")


def build():
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource as Source,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterExtent,
        QgsProcessingParameterFile,
        QgsProcessingParameterMultipleLayers,
        QgsProcessingParameterNumber,
    )
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("sentinel_to_gpp", "Pipelines", "pipelines")
    model.setHelpContent({
        "ALG_DESC": "Sentinel-2 L2A (+ Sentinel-1) downloads to daily GPP maps: Prepare Sentinel-1/2 time "
                    "stack, then Compute embeddings, then Predict GPP (CAMEO). Run it in batch mode (right-click "
                    "> Execute as Batch Process) with one row per area.",
        "ALG_CREATOR": "CAMEO", "ALG_VERSION": "1"})
    params = [
        (QgsProcessingParameterMultipleLayers("S2", "Sentinel-2 L2A inputs", QgsProcessing.SourceType.TypeFile), 0),
        (QgsProcessingParameterMultipleLayers("S1", "Sentinel-1 VV/VH inputs [optional]", QgsProcessing.SourceType.TypeFile,
                                              optional=True), 1),
        (QgsProcessingParameterExtent("EXTENT", "Processing extent [optional]", optional=True), 2),
        (QgsProcessingParameterNumber("MIN_VALID_FRACTION", "Minimum valid fraction of a date (0-1)",
                                      QgsProcessingParameterNumber.Type.Double, 0.5, minValue=0.0, maxValue=1.0), 3),
        (QgsProcessingParameterFile("MODELS", "CAMEO model folder (default: the bundled models)",
                                    behavior=QgsProcessingParameterFile.Behavior.Folder, optional=True), 4),
        (QgsProcessingParameterFile("GPP_MODEL", "GPP model (default: the bundled one)", extension="onnx",
                                    optional=True), 5),
    ]
    for parameter, row in params:
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120, 60 + 70 * row))
        model.addModelParameter(parameter, component)

    def child(alg_id, child_id, description, x, sources, outputs):
        c = QgsProcessingModelChildAlgorithm(alg_id)
        c.setChildId(child_id)
        c.setDescription(description)
        c.setPosition(QPointF(x, 260))
        for name, source in sources.items():
            c.addParameterSources(name, [source])
        model_outputs = {}
        for name, (child_output, description) in outputs.items():
            out = QgsProcessingModelOutput(name, description)
            out.setChildId(child_id)
            out.setChildOutputName(child_output)
            out.setDescription(description)
            out.setPosition(QPointF(x + 40, 360))
            model_outputs[name] = out
        c.setModelOutputs(model_outputs)
        model.addChildAlgorithm(c)
        return c

    child("cameo:preparestack", "prepare", "Prepare Sentinel-1/2 time stack", 400, {
        "S2": Source.fromModelParameter("S2"), "S1": Source.fromModelParameter("S1"),
        "EXTENT": Source.fromModelParameter("EXTENT"),
        "MIN_VALID_FRACTION": Source.fromModelParameter("MIN_VALID_FRACTION"),
    }, {"Stacks": ("OUTPUT_FOLDER", "Stacks")})
    child("cameo:embed", "embed", "Compute embeddings", 650, {
        "S2_STACK": Source.fromChildOutput("prepare", "S2_STACK"),
        "S1_STACK": Source.fromChildOutput("prepare", "S1_STACK"),
        "MODELS": Source.fromModelParameter("MODELS"),
    }, {"Embeddings": ("OUTPUT_FOLDER", "Embeddings")})
    child("cameo:predictgpp", "gpp", "Predict GPP", 900, {
        "EMBEDDINGS": Source.fromChildOutput("embed", "EMBEDDINGS"),
        "MODEL": Source.fromModelParameter("GPP_MODEL"),
    }, {"GPP": ("OUTPUT_FOLDER", "GPP maps")})
    return model


def main():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.append("/usr/share/qgis/python/plugins")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    model = build()
    if not model.toFile(OUT):
        raise SystemExit(f"could not write {OUT}")
    print(OUT)


if __name__ == "__main__":
    main()
