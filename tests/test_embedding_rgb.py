"""Embedding to RGB: principal components and stretch, checked on a raster built for it."""

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from models.embedding.rgb import embedding_to_rgb
from models.errors import CameoInputError

HEIGHT, WIDTH = 30, 50


@pytest.fixture
def embedding_file(tmp_path):
    """7 features = column index along one direction u + small noise; one pixel NaN.

    Its first principal component is u, with scores growing with the column, so the
    red channel must rise from 1 at the left edge to 255 at the right edge.
    """
    rng = np.random.default_rng(0)
    u = np.array([0.1, 0.7, 0.2, 0.1, 0.5, 0.3, 0.3])
    u /= np.linalg.norm(u)
    columns = np.broadcast_to(np.arange(WIDTH, dtype=float), (HEIGHT, WIDTH))
    values = columns[None] * u[:, None, None] + rng.normal(0, 0.01, (7, HEIGHT, WIDTH))
    values = values.astype(np.float32)
    values[:, 4, 9] = np.nan
    path = tmp_path / "embedding_2018-06-30.tif"
    with rasterio.open(path, "w", driver="GTiff", width=WIDTH, height=HEIGHT, count=7, dtype="float32",
                       crs="EPSG:32631", transform=from_origin(500000, 5630000, 10, 10), nodata=np.nan) as out:
        out.write(values)
        out.update_tags(CAMEO_DATE="2018-06-30")
    return path, values, u


def test_first_component_is_the_built_in_direction(embedding_file, tmp_path):
    path, _, u = embedding_file
    result = embedding_to_rgb(str(path), str(tmp_path / "rgb.tif"))
    np.testing.assert_allclose(result["components"][:, 0], u, atol=1e-3)
    assert result["explained_variance"][0] > 0.99
    assert result["date"] == "2018-06-30"


def test_red_follows_the_columns_and_no_data_stays_zero(embedding_file, tmp_path):
    path, _, _ = embedding_file
    embedding_to_rgb(str(path), str(tmp_path / "rgb.tif"))
    with rasterio.open(tmp_path / "rgb.tif") as rgb:
        image = rgb.read()
        assert (rgb.count, rgb.dtypes[0], rgb.nodata) == (3, "uint8", 0)
        assert rgb.transform == from_origin(500000, 5630000, 10, 10)
    red = image[0].astype(int)
    assert (red[:, 0] == 1).all() and (red[:, -1] == 255).all()  # beyond the 2/98 % limits
    mean_by_column = red[np.arange(HEIGHT) != 4].mean(axis=0)
    assert np.all(np.diff(mean_by_column) >= 0)
    assert np.all(np.diff(mean_by_column[1:-1]) > 0)  # strictly rising between the clipped ends
    assert image[:, 4, 9].tolist() == [0, 0, 0]
    assert (image[:, np.arange(HEIGHT) != 4] > 0).all()


def test_pixels_match_a_hand_computed_stretch(embedding_file, tmp_path):
    path, values, _ = embedding_file
    result = embedding_to_rgb(str(path), str(tmp_path / "rgb.tif"))
    pixels = values.reshape(7, -1).T.astype(np.float64)
    pixels = pixels[np.all(np.isfinite(pixels), axis=1)]
    centred = pixels - pixels.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:3].T * np.sign(vt[:3].T[np.abs(vt[:3].T).argmax(axis=0), range(3)])
    scores = centred @ components
    low, high = np.percentile(scores, [2, 98], axis=0)
    with rasterio.open(tmp_path / "rgb.tif") as rgb:
        image = rgb.read()
    for y, x in [(0, 0), (10, 20), (29, 49), (15, 33)]:
        score = (values[:, y, x].astype(np.float64) - pixels.mean(axis=0)) @ components
        expected = 1 + np.round(np.clip((score - low) / (high - low), 0, 1) * 254)
        assert image[:, y, x].tolist() == expected.astype(int).tolist()
    np.testing.assert_allclose(result["limits"], [low, high])


def test_a_date_not_in_a_single_date_file_is_refused(embedding_file, tmp_path):
    path, _, _ = embedding_file
    with pytest.raises(CameoInputError, match="holds the embedding of 2018-06-30, not 2019-01-01"):
        embedding_to_rgb(str(path), str(tmp_path / "rgb.tif"), date="2019-01-01")
    with pytest.raises(CameoInputError, match="not a date of the form YYYY-MM-DD"):
        embedding_to_rgb(str(path), str(tmp_path / "rgb.tif"), date="30/06/2018")
    assert not (tmp_path / "rgb.tif").exists()


def test_a_raster_that_is_no_embedding_is_refused(tmp_path):
    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=7, dtype="float32",
                       crs="EPSG:32631", transform=from_origin(0, 40, 10, 10)) as out:
        out.write(np.zeros((7, 4, 4), np.float32))
    with pytest.raises(CameoInputError, match="not a CAMEO embedding"):
        embedding_to_rgb(str(path), str(tmp_path / "rgb.tif"))
