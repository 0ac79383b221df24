"""QGIS 4 (Qt6) readiness of every Python file, checked with `ast` (runs without QGIS)."""

import textwrap

from qt6_rules import python_files, resource_files, scoped_replacement, violations


def test_no_python_file_breaks_a_qt6_rule():
    found = [line for path in python_files() for line in violations(path)]
    assert not found, ("Code that QGIS 4 (PyQt6) cannot run; fix each line as said:\n"
                       + "\n".join(sorted(found)))


def test_no_compiled_qt_resources():
    assert list(resource_files()) == [], "pyrcc5 resources do not load in QGIS 4: load files by path"


def test_each_rule_is_caught_with_file_line_and_replacement(tmp_path):
    source = tmp_path / "algo.py"
    source.write_text(textwrap.dedent("""\
        from qgis.core import QgsProcessing, QgsProcessingParameterNumber, QgsProcessingContext
        from qgis.PyQt import QtCore
        from qgis.PyQt.QtWidgets import QDialog
        from PyQt5.QtCore import QTimer
        import PyQt6.QtGui
        from .resources_rc import qInitResources
        layer_type = QgsProcessing.TypeFile
        number = QgsProcessingParameterNumber.Type.Integer
        align = QtCore.Qt.AlignLeft
        accepted = QDialog().exec_() == QDialog.DialogCode.Accepted
        details = QgsProcessingContext.LayerDetails("name", None)
        version = QgsProcessing.TEMPORARY_OUTPUT
    """))
    found = violations(source, root=tmp_path)
    assert found == [
        "algo.py:4: import of PyQt5.QtCore - import from qgis.PyQt instead (e.g. from "
        "qgis.PyQt.QtCore import ...), which maps to PyQt5 or PyQt6",
        "algo.py:5: import of PyQt6.QtGui - import from qgis.PyQt instead (e.g. from "
        "qgis.PyQt.QtCore import ...), which maps to PyQt5 or PyQt6",
        "algo.py:6: import of a compiled Qt resource module - load files by path "
        "(e.g. QIcon(str(Path(__file__).parent / 'resources' / 'icon.png')))",
        "algo.py:7: unscoped enum QgsProcessing.TypeFile - write QgsProcessing.SourceType.TypeFile",
        "algo.py:9: unscoped enum Qt.AlignLeft - write Qt.AlignmentFlag.AlignLeft",
        "algo.py:10: exec_() is gone in PyQt6 - write exec()",
    ]


def test_an_unknown_member_gets_the_pattern_to_follow():
    assert scoped_replacement("QgsNoSuchClass", "SomeMember") == (
        "QgsNoSuchClass.<EnumType>.SomeMember (the enum type that holds SomeMember: see the "
        "API docs, and use only a form that exists in QGIS 3.22 too)")
