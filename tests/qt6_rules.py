"""QGIS 4 (Qt6) rules for CAMEO's Python, checked with `ast` alone (no QGIS import).

QGIS 4 runs PyQt6, where enum members exist only in their enum's scope
(`Qt.AlignmentFlag.AlignLeft`, not `Qt.AlignLeft`), `exec_()` is gone, PyQt5/PyQt6 must
be reached through `qgis.PyQt`, and compiled `pyrcc5` resource modules do not load.
`violations(path)` lists each breach with file:line and the replacement to write.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SKIPPED_FOLDERS = {".git", ".venv", "runs", "dist", "__pycache__", ".pytest_cache", ".hypothesis"}

# Scoped forms that exist in QGIS 3.22's and 3.44's bindings alike (test_qt6_enums_qgis
# evaluates each in the QGIS it runs in). Class -> member -> the enum type that holds it
# (or the whole replacement, where it moved to Qgis); for any other member the message
# names the enum type when QGIS is importable, else the pattern to follow.
KNOWN_ENUMS = {
    "Qt": {"AlignLeft": "AlignmentFlag", "AlignRight": "AlignmentFlag", "AlignCenter": "AlignmentFlag",
           "AlignTop": "AlignmentFlag", "AlignVCenter": "AlignmentFlag", "AlignHCenter": "AlignmentFlag",
           "Checked": "CheckState", "Unchecked": "CheckState", "Horizontal": "Orientation",
           "Vertical": "Orientation", "UserRole": "ItemDataRole", "DisplayRole": "ItemDataRole",
           "WaitCursor": "CursorShape", "ISODate": "DateFormat", "UTC": "TimeSpec",
           "LocalTime": "TimeSpec", "WindowModal": "WindowModality", "ApplicationModal": "WindowModality",
           "RichText": "TextFormat", "PlainText": "TextFormat", "TextSelectableByMouse": "TextInteractionFlag"},
    "QDialog": {"Accepted": "DialogCode", "Rejected": "DialogCode"},
    "QDialogButtonBox": {name: "StandardButton" for name in ("Ok", "Cancel", "Close", "Yes", "No", "Help")},
    "QMessageBox": {"Ok": "StandardButton", "Cancel": "StandardButton", "Yes": "StandardButton",
                    "No": "StandardButton", "Warning": "Icon", "Critical": "Icon", "Information": "Icon"},
    "QSizePolicy": {"Expanding": "Policy", "Preferred": "Policy", "Fixed": "Policy", "Minimum": "Policy"},
    "QLineEdit": {"Normal": "EchoMode", "Password": "EchoMode"},
    "QgsProcessing": {name: "SourceType" for name in (
        "TypeFile", "TypeRaster", "TypeVector", "TypeVectorAnyGeometry", "TypeVectorPoint",
        "TypeVectorLine", "TypeVectorPolygon", "TypeMapLayer", "TypeMesh", "TypePointCloud")},
    "QgsProcessingParameterNumber": {"Integer": "Type", "Double": "Type"},
    "QgsProcessingParameterFile": {"File": "Behavior", "Folder": "Behavior"},
    "QgsProcessingParameterDefinition": {"FlagAdvanced": "Flag", "FlagHidden": "Flag",
                                         "FlagOptional": "Flag"},
    "QgsProcessingAlgorithm": {"FlagNoThreading": "Flag", "FlagCanCancel": "Flag",
                               "FlagRequiresProject": "Flag", "FlagHideFromToolbox": "Flag"},
    "QgsFeatureSink": {"FastInsert": "Flag"},
    "QgsMapLayer": {"RasterLayer": "LayerType", "VectorLayer": "LayerType"},
    "QgsRasterLayerTemporalProperties": {"ModeFixedTemporalRange": "Qgis.RasterTemporalMode.FixedTemporalRange"},
    "QgsRasterBandStats": {"Min": "Stats", "Max": "Stats", "All": "Stats"},
    "QgsContrastEnhancement": {"StretchToMinimumMaximum": "ContrastEnhancementAlgorithm",
                               "NoEnhancement": "ContrastEnhancementAlgorithm"},
    "QgsColorRampShader": {"Interpolated": "Type", "Discrete": "Type", "Exact": "Type"},
    "QgsWkbTypes": {"PointGeometry": "GeometryType", "LineGeometry": "GeometryType",
                    "PolygonGeometry": "GeometryType"},
    "QgsTemporalNavigationObject": {"FixedRange": "NavigationMode", "Animated": "NavigationMode"},
    "Qgis": {"Info": "MessageLevel", "Warning": "MessageLevel", "Critical": "MessageLevel",
             "Success": "MessageLevel"},
}


def python_files(root=REPO):
    for path in sorted(root.rglob("*.py")):
        if not SKIPPED_FOLDERS.intersection(path.relative_to(root).parts):
            yield path


def resource_files(root=REPO):
    """Compiled Qt resources (pyrcc5 output) or their sources: none may exist."""
    for pattern in ("*.qrc", "*_rc.py", "resources.py", "resources_rc.py"):
        for path in sorted(root.rglob(pattern)):
            if not SKIPPED_FOLDERS.intersection(path.relative_to(root).parts):
                yield path


def _qt_names(tree):
    """Names bound by `from qgis... import X` / `from PyQt... import X` in this module."""
    classes, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                "qgis", "PyQt5", "PyQt6"):
            for alias in node.names:
                name = alias.asname or alias.name
                # `from qgis.PyQt import QtCore` binds a module, `from qgis.core import X` a class.
                (modules if alias.name.startswith("Qt") and node.module.endswith("PyQt") else classes).add(name)
    return classes | {"Qt", "Qgis"}, modules


def _attribute_chain(node):
    """['QtCore', 'Qt', 'AlignLeft'] for QtCore.Qt.AlignLeft, or None if not plain names."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def known_replacements():
    """Every scoped form of KNOWN_ENUMS, as {'Qt.AlignLeft': 'Qt.AlignmentFlag.AlignLeft'}."""
    return {f"{owner}.{member}": enum if "." in enum else f"{owner}.{enum}.{member}"
            for owner, members in KNOWN_ENUMS.items() for member, enum in members.items()}


def scoped_replacement(owner, member):
    """'Qt.AlignmentFlag.AlignLeft' for ('Qt', 'AlignLeft'), or a pattern to look up."""
    known = known_replacements().get(f"{owner}.{member}") or _replacement_from_qgis(owner, member)
    if known:
        return known
    return (f"{owner}.<EnumType>.{member} (the enum type that holds {member}: see the API docs, "
            "and use only a form that exists in QGIS 3.22 too)")


def _replacement_from_qgis(owner, member):
    """The enum holding owner.member in the QGIS importable here, or None (no QGIS)."""
    try:
        import enum
        import importlib

        for module_name in ("qgis.core", "qgis.gui", "qgis.PyQt.QtCore", "qgis.PyQt.QtWidgets", "qgis.PyQt.QtGui"):
            cls = getattr(importlib.import_module(module_name), owner, None)
            value = getattr(cls, member, None)
            if value is None:
                continue
            if not isinstance(value, enum.Enum):  # sip enum of QGIS 3.22 or PyQt5
                return f"{owner}.{type(value).__name__}.{member}"
            for scope in dir(cls):  # QGIS >= 3.30 keeps the old scope name as an alias
                if getattr(cls, scope) is type(value) and hasattr(type(value), member):
                    return f"{owner}.{scope}.{member}"
            return f"Qgis.{type(value).__name__}.{value.name} (check that QGIS 3.22 has it)"
    except Exception:  # noqa: BLE001 - no QGIS here: the caller gives the pattern
        return None
    return None


def violations(path, root=REPO):
    """Every Qt6 rule this file breaks, as 'file:line: what - write instead'."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    where = path.relative_to(root) if path.is_relative_to(root) else path
    classes, modules = _qt_names(tree)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []

    def report(node, what):
        found.append(f"{where}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            _check_import(node, report)
        elif isinstance(node, ast.Attribute):
            if node.attr == "exec_":
                report(node, "exec_() is gone in PyQt6 - write exec()")
                continue
            chain = _attribute_chain(node)
            parent = parents.get(node)
            if (chain is None or isinstance(parent, ast.Attribute)
                    or (isinstance(parent, ast.Call) and parent.func is node)):
                continue  # a longer chain (checked at its end) or a call of a nested class
            if chain[0] in modules:
                chain = chain[1:]
            if len(chain) == 2 and chain[0] in classes and _looks_like_enum_member(chain[1]):
                report(node, f"unscoped enum {chain[0]}.{chain[1]} - write "
                             f"{scoped_replacement(chain[0], chain[1])}")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def _looks_like_enum_member(name):
    """CamelCase (AlignLeft, TypeFile), not a CONSTANT (QGIS_VERSION) or a method."""
    return name[:1].isupper() and not name.isupper() and "_" not in name


def _check_import(node, report):
    names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    for name in names:
        top = name.split(".")[0]
        if top in ("PyQt5", "PyQt6", "sip"):
            report(node, f"import of {name} - import from qgis.PyQt instead "
                         f"(e.g. from qgis.PyQt.QtCore import ...), which maps to PyQt5 or PyQt6")
    if isinstance(node, ast.ImportFrom):
        imported = [node.module or ""] + [alias.name for alias in node.names]
        if any(n.split(".")[-1] in ("resources", "resources_rc") or n.endswith("_rc") for n in imported):
            report(node, "import of a compiled Qt resource module - load files by path "
                         "(e.g. QIcon(str(Path(__file__).parent / 'resources' / 'icon.png')))")
