"""The scoped enum forms that tests/qt6_rules.py tells developers to write exist in this QGIS.

Run under QGIS 3.22 (host) and 3.44 (CI's Debian 13 root), so each replacement holds
from the oldest supported QGIS to the newest one tested.
"""

import pytest

from qt6_rules import known_replacements


@pytest.mark.parametrize("unscoped, scoped", sorted(known_replacements().items()))
def test_scoped_form_exists_and_equals_the_unscoped_one(qgis_app, unscoped, scoped):
    import qgis.core
    import qgis.PyQt.QtCore
    import qgis.PyQt.QtWidgets

    names = {**vars(qgis.PyQt.QtWidgets), **vars(qgis.PyQt.QtCore), **vars(qgis.core)}
    value = eval(scoped, names)  # noqa: S307 - our own table of attribute paths
    try:
        old = eval(unscoped, names)  # noqa: S307
    except AttributeError:
        return  # QGIS 4 has only the scoped form
    assert value == old
