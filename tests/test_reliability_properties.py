"""Property-based tests (hypothesis) of the parsers users feed text to.

Dates and band names from file names and metadata, CF time units, S2_BANDS and mask
value lists, extents, the DATE of Embedding to RGB, a stack's date tags, and the ONNX
metadata reader: for any input they return a valid value or raise CameoInputError with
a message, never anything else.
"""

import datetime as dt
import json
import os
import string

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from models.errors import CameoInputError
from models.stack.sources import normalise_band, parse_cf_time, parse_date

FAST = settings(max_examples=300, deadline=None)
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
S2 = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
ALLOWED = set(S2) | {"B01", "B09", "B10", "SCL", "VV", "VH"}
dates = st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2100, 12, 31))
# Text around a date that cannot extend its digits (the parser needs non-digit boundaries).
edge = st.text(alphabet=string.ascii_letters + "_-. /()", max_size=12)


# ----------------------------------------------------------------------------- dates

@FAST
@given(dates, st.sampled_from(["%Y%m%d", "%Y-%m-%d", "%Y_%m_%d"]), edge, edge)
def test_a_date_in_any_supported_form_is_found(date, form, before, after):
    assume(not before.endswith(("-", "_")) and not after.startswith(("-", "_")))
    assert parse_date(f"{before}{date.strftime(form)}{after}") == date


@FAST
@given(dates, dates)
def test_the_first_date_of_a_safe_style_name_wins(sensing, processing):
    name = f"S2A_MSIL2A_{sensing:%Y%m%d}T105031_N0500_R051_T31UFS_{processing:%Y%m%d}T135226.SAFE"
    assert parse_date(name) == sensing


@FAST
@given(st.text(max_size=60))
def test_any_text_gives_a_plausible_date_or_none(text):
    found = parse_date(text)
    assert found is None or dt.date(1970, 1, 1) <= found <= dt.date(2100, 12, 31)


@FAST
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30), st.text(max_size=20)),
       st.text(max_size=60))
def test_cf_time_never_raises(value, units):
    stamp = parse_cf_time(value, units)
    assert stamp is None or isinstance(stamp, dt.datetime)


@FAST
@given(st.integers(0, 30000), st.sampled_from(["days", "hours", "seconds", "minutes"]), dates)
def test_cf_time_round_trips(count, unit, base):
    per_day = {"days": 1, "hours": 24, "minutes": 1440, "seconds": 86400}[unit]
    stamp = parse_cf_time(count * per_day, f"{unit} since {base.isoformat()} 00:00:00")
    assert stamp.date() == base + dt.timedelta(days=count)


# ----------------------------------------------------------------------------- band names

def _variants(band):
    number = band[1:].lstrip("0") if band != "B8A" else "8A"
    return [band, f"B{number}", band.lower(), f"{band} (490 nm)", f"S2-L2A-{band}", f"sentinel2_{band}_10m"]


@FAST
@given(st.sampled_from(S2), st.integers(0, 5), st.sampled_from(["", " ", "_", "-", "."]))
def test_every_spelling_of_a_band_is_recognised(band, variant, pad):
    assert normalise_band(pad + _variants(band)[variant] + pad) == band


@FAST
@given(st.text(max_size=40))
def test_any_text_gives_a_known_band_or_none(text):
    assert normalise_band(text) in ALLOWED | {None}


@FAST
@given(st.lists(st.sampled_from(S2), min_size=2, max_size=4, unique=True))
def test_a_name_with_two_bands_is_not_guessed(bands):
    assert normalise_band("_".join(bands)) is None


@FAST
@given(st.text(max_size=80))
def test_band_orders_and_mask_values_parse_or_explain(text):
    from models.stack.prepare import parse_band_orders, parse_valid_values

    orders = parse_band_orders(text)
    assert all(order and all(name.strip() == name and name for name in order) for order in orders)
    try:
        values = parse_valid_values(text)
    except CameoInputError as error:
        assert "comma-separated" in str(error)
    else:
        assert values is None or all(isinstance(v, int) for v in values)


@FAST
@given(st.text(max_size=80))
def test_extents_parse_or_explain(text):
    from models.stack.cli import parse_extent

    try:
        (xmin, ymin, xmax, ymax), crs = parse_extent(text)
    except CameoInputError as error:
        assert "xmin,xmax,ymin,ymax" in str(error)
    else:
        assert all(isinstance(v, float) for v in (xmin, ymin, xmax, ymax))


# ----------------------------------------------------------------------------- DATE of Embedding to RGB

@pytest.fixture(scope="module")
def embedding_vrt(tiny_models_dir, tmp_path_factory):
    from models.embedding.job import embed_stacks
    from reliability_helpers import tiny_stacks

    root = tmp_path_factory.mktemp("prop-embedding")
    stacks = tiny_stacks(str(root / "stacks"), size=8, s1=False)
    return embed_stacks(stacks["S2_STACK"], str(root / "emb"), tile_size=32, threads=1,
                        models_dir=str(tiny_models_dir)).index_path


@SLOW
@given(st.one_of(st.text(max_size=20), dates.map(dt.date.isoformat)))
def test_rgb_date_is_used_or_explained(embedding_vrt, tmp_path_factory, text):
    from models.embedding.rgb import embedding_to_rgb

    out = str(tmp_path_factory.mktemp("rgb") / "rgb.tif")
    try:
        result = embedding_to_rgb(embedding_vrt, out, date=text or None)
    except CameoInputError as error:
        assert "YYYY-MM-DD" in str(error)
        assert not os.path.exists(out) and not os.path.exists(out + ".part")
    else:
        assert result["date"] in {"2018-06-01", "2018-06-06", "2018-06-11", "2018-06-16"}


# ----------------------------------------------------------------------------- a stack's date tags

@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    from reliability_helpers import tiny_stacks

    return tiny_stacks(str(tmp_path_factory.mktemp("prop-stack")), n_dates=3, size=4, s1=False)["S2_STACK"]


@SLOW
@given(st.one_of(st.text(max_size=40), st.lists(dates, min_size=0, max_size=5).map(
    lambda ds: ",".join(d.isoformat() for d in ds))))
def test_a_stack_with_any_date_tag_reads_or_explains(stack_file, tmp_path_factory, tag):
    import shutil

    from models.stack import read_stack_info

    path = str(tmp_path_factory.mktemp("tag") / "s2_stack.tif")
    shutil.copy(stack_file, path)
    with rasterio.open(path, "r+") as data:
        data.update_tags(CAMEO_DATES=tag)
    try:
        info = read_stack_info(path)
    except CameoInputError as error:
        assert "Prepare the stack again with cameo:preparestack" in str(error)
    else:
        assert len(info.dates) == 3 and info.dates == sorted(set(info.dates))


# ----------------------------------------------------------------------------- ONNX metadata

metadata_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@SLOW
@given(st.dictionaries(metadata_text.filter(bool), metadata_text, max_size=8))
def test_onnx_metadata_reads_back_exactly(tmp_path_factory, metadata):
    from models.onnx_info import describe_onnx
    from onnx_models import write_affine_model

    path = write_affine_model(tmp_path_factory.mktemp("onnx") / "m.onnx", metadata)
    info = describe_onnx(str(path))
    assert info["metadata"] == metadata
    assert info["inputs"] == [{"name": "x", "shape": ["batch", 3], "type": "tensor(float)"}]


@SLOW
@given(st.binary(max_size=300))
def test_any_bytes_are_a_model_or_a_clear_refusal(tmp_path_factory, data):
    from models.onnx_info import describe_onnx

    path = tmp_path_factory.mktemp("bytes") / "m.onnx"
    path.write_bytes(data)
    with pytest.raises(CameoInputError, match="is not a readable ONNX model .*Choose a .onnx file"):
        describe_onnx(str(path))


GOOD_META = {
    "cameo_modality": "S2", "cameo_bands": json.dumps(S2), "cameo_input_units": "reflectance",
    "cameo_scaling": json.dumps({"clip_min": 0, "clip_max": 1, "add": 0, "multiply": 1}),
    "cameo_norm_mean": json.dumps([0.1] * 10), "cameo_norm_std": json.dumps([0.05] * 10),
    "cameo_invalid_fill": "0", "cameo_window": "15", "cameo_frames": "11", "cameo_halo": "7",
    "cameo_feature_channels": "8", "cameo_latent_dim": "9",
}
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(),
                                     st.text(max_size=5)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=8)


@FAST
@given(st.sets(st.sampled_from(sorted(GOOD_META)), max_size=3),
       st.dictionaries(st.sampled_from(sorted(GOOD_META)), st.one_of(metadata_text, json_values.map(json.dumps)),
                       max_size=3))
def test_modality_metadata_is_used_or_refused_clearly(removed, changed, ):
    from models.runtime.engine import ModalitySpec

    meta = dict(GOOD_META)
    meta.update(changed)
    for key in removed:
        meta.pop(key, None)
    try:
        spec = ModalitySpec.from_metadata(meta)
    except CameoInputError as error:
        assert "not a CAMEO modality model" in str(error)
    else:
        assert spec.bands and len(spec.mean) == len(spec.bands) == len(spec.std)
        assert np.all(spec.std > 0) and spec.window == 2 * spec.halo + 1


def test_the_unchanged_metadata_is_accepted():
    from models.runtime.engine import ModalitySpec

    spec = ModalitySpec.from_metadata(GOOD_META)
    assert spec.bands == S2 and spec.window == 15
