"""The dialog that tells a QGIS desktop user which Python packages CAMEO still needs."""

from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)


class MissingDependenciesDialog(QDialog):
    """Names the missing packages and offers the install command, ready to copy."""

    def __init__(self, packages, command, parent=None):
        super().__init__(parent)
        self.setWindowTitle("CAMEO: Python packages missing")
        names = ", ".join(packages)
        self.message = QLabel(
            f"CAMEO needs the Python package(s) <b>{names}</b>, which the Python used by "
            "QGIS cannot import. Its Processing algorithms that need them will stop with "
            "this same message until they are installed.<br><br>"
            "Run this command in a terminal (on Windows: the OSGeo4W Shell), then restart "
            "QGIS. It keeps QGIS's own numpy, which PyQGIS and GDAL are built against:")
        self.message.setWordWrap(True)
        self.command = QLineEdit(command)
        self.command.setReadOnly(True)
        self.command.setCursorPosition(0)  # show where the command starts
        self.command.setMinimumWidth(560)
        self.copy_button = QPushButton("Copy command")
        self.copy_button.clicked.connect(self.copy_command)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.message, self.command, self.copy_button, buttons):
            layout.addWidget(widget)

    def copy_command(self):
        QApplication.clipboard().setText(self.command.text())
        self.copy_button.setText("Copied")
