"""What every CAMEO Processing algorithm follows (QGIS core's style): help as a tuple of
paragraphs, joined in one place and one format; every parameter and output name a class
constant of the same name."""

import pytest


def _algorithms():
    """The CAMEO algorithms as QGIS registered them (parameters initialised)."""
    from qgis.core import QgsApplication

    from cameo.algorithms.base import CameoAlgorithm

    provider = QgsApplication.processingRegistry().providerById("cameo")
    return [a for a in provider.algorithms() if isinstance(a, CameoAlgorithm)]


def test_help_is_paragraphs_joined_by_one_break(qgis_app):
    algorithms = _algorithms()
    assert len(algorithms) >= 9
    for algorithm in algorithms:
        paragraphs = type(algorithm).HELP
        assert isinstance(paragraphs, tuple) and paragraphs, algorithm.name()
        for paragraph in paragraphs:
            assert isinstance(paragraph, str) and paragraph.strip() == paragraph, algorithm.name()
            assert "<br>" not in paragraph and "\n" not in paragraph, (algorithm.name(), paragraph[:60])
        assert algorithm.shortHelpString().split("<br><br>") == list(paragraphs)


@pytest.mark.parametrize("kind", ["parameterDefinitions", "outputDefinitions"])
def test_every_parameter_and_output_name_is_a_class_constant(qgis_app, kind):
    for algorithm in _algorithms():
        names = [d.name() for d in getattr(algorithm, kind)()]
        assert [getattr(type(algorithm), name, None) for name in names] == names, algorithm.name()
