"""Post-processors of loaded layers: alive until Processing calls them, then released; and
released too when their context is gone without loading the layers (processing.run)."""

import datetime
import gc

from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsRasterLayer


def _pending_ids():
    from cameo.algorithms.layer_loading import RetainedPostProcessor

    return {id(post) for post in RetainedPostProcessor.pending}


def test_post_processors_live_until_called_then_are_released(qgis_app, tmp_path):
    from cameo.algorithms.layer_loading import load_dated_layers

    dates = [datetime.date(2018, 6, d) for d in (1, 2, 3)]
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    load_dated_layers(context, [(str(tmp_path / f"x_{d}.tif"), d) for d in dates], "CAMEO test", "OUT")
    gc.collect()  # what Processing holds is only the C++ pointer: Python must keep these alive
    posts = [details.postProcessor() for details in context.layersToLoadOnCompletion().values()]
    assert {id(post) for post in posts} <= _pending_ids() and len(posts) == 3
    layer = QgsRasterLayer()  # any layer: the post-processor sets its date, then it is done
    for post in posts:
        post.postProcessLayer(layer, context, QgsProcessingFeedback())
    assert layer.temporalProperties().isActive()

    second = QgsProcessingContext()
    load_dated_layers(second, [(str(tmp_path / "y.tif"), dates[0])], "CAMEO test", "OUT")
    assert not {id(post) for post in posts} & _pending_ids()  # the called ones are released
    assert len(_pending_ids()) == 1


def test_post_processors_of_a_context_that_never_loaded_are_released(qgis_app, tmp_path):
    from cameo.algorithms.layer_loading import RetainedPostProcessor, load_dated_layers

    for run in range(20):  # 20 runs of 5 dates each, as processing.run() in a script: nothing loads
        context = QgsProcessingContext()
        load_dated_layers(context, [(str(tmp_path / f"r{run}_{d}.tif"), datetime.date(2018, 7, d + 1))
                                    for d in range(5)], "CAMEO test", "OUT")
        del context  # the context deletes its post-processors (C++ side)
    assert len(RetainedPostProcessor.pending) <= 5  # only the last run's, not 100
