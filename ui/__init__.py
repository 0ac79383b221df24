"""Widgets of the CAMEO plugin (QGIS desktop only)."""
