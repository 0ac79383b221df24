"""The bad-input cases of the reliability suite, shared by the tests and the table.

Each case builds its inputs in a fresh folder and returns (algorithm, parameters); the
user must see one message matching `pattern` (it names the problem and the fix), no
traceback, nothing written, and the inputs unchanged.
"""

import os
import shutil
import struct
from dataclasses import dataclass

import numpy as np
import rasterio

from reliability_helpers import (
    DATES,
    S2_BANDS,
    copy_models,
    rewrite_manifest,
    set_onnx_metadata,
    tiny_stacks,
    write_s1,
    write_s2,
)


@dataclass
class Case:
    id: str
    algorithm: str
    what: str  # the bad input, in words (for the table)
    pattern: str  # regex the message must match (problem and fix)
    build: object  # build(folder, env) -> parameters; env has models, stacks, embeddings
    # Newer QGIS may refuse this input itself, before CAMEO runs: then its own two-line
    # message must name this parameter (see QGIS_REFUSAL).
    qgis_may_refuse: str = ""


# QGIS's own check of a layer parameter, before the algorithm runs (its wording).
QGIS_REFUSAL = r"Unable to execute algorithm\nCould not load source layer for {parameter}: .* not found"


def _truncate(source, target, keep=0.5):
    data = open(source, "rb").read()
    with open(target, "wb") as handle:
        handle.write(data[:int(len(data) * keep)])
    return str(target)


def _retag(source, target, **tags):
    shutil.copy(source, target)
    with rasterio.open(target, "r+") as data:
        data.update_tags(**tags)
    return str(target)


def _stack_dir(folder, **kw):
    return tiny_stacks(os.path.join(folder, "stacks"), **kw)


def _out(folder):
    return os.path.join(folder, "out")


# ----------------------------------------------------------------------------- preparestack

def _prep(s2, folder, **extra):
    params = {"S2": s2 if isinstance(s2, list) else [s2], "OUTPUT_FOLDER": _out(folder)}
    params.update(extra)
    return "cameo:preparestack", params


def p_wrong_band_count(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif", bands=S2_BANDS[:7], describe=False), folder)


def p_unnamed_bands_order(folder, env):
    # 11 bands in some order with no descriptions, and an S2_BANDS that does not fit them
    return _prep(write_s2(f"{folder}/S2_20180601.tif", describe=False), folder,
                 S2_BANDS="B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12")


def p_band_missing(folder, env):
    bands = tuple(b for b in S2_BANDS + ("SCL",) if b != "B8A")
    return _prep(write_s2(f"{folder}/S2_20180601.tif", bands=bands), folder)


def p_mixed_crs(folder, env):
    return _prep([write_s2(f"{folder}/S2_20180601.tif"),
                  write_s2(f"{folder}/S2_20180606.tif", crs="EPSG:32632")], folder)


def p_not_georeferenced(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif", georeferenced=False), folder)


def p_truncated(folder, env):
    full = write_s2(f"{folder}/full_20180601.tif", size=64)
    target = _truncate(full, f"{folder}/S2_20180601.tif")
    os.remove(full)
    return _prep(target, folder)


def p_zero_bytes(folder, env):
    open(f"{folder}/S2_20180601.tif", "wb").close()
    return _prep(f"{folder}/S2_20180601.tif", folder)


def p_garbage_tif(folder, env):
    with open(f"{folder}/S2_20180601.tif", "wb") as handle:
        handle.write(b"II*\x00" + struct.pack("<I", 8) + os.urandom(200))
    return _prep(f"{folder}/S2_20180601.tif", folder)


def p_not_reflectance(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif", dn=25000), folder)


def p_nan_everywhere(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif", values=[np.nan] * 10, dtype="float32", nodata=None),
                 folder)


def p_inf_everywhere(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif", values=[np.inf] * 10, dtype="float32", nodata=None),
                 folder)


def p_s1_as_s2(folder, env):
    return _prep(write_s1(f"{folder}/S1_20180601.tif"), folder)


def p_s2_as_s1(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif"), folder, S1=[write_s2(f"{folder}/S2_20180602.tif")])


def p_duplicate_dates(folder, env):
    return _prep([write_s2(f"{folder}/a_20180601.tif"),
                  write_s2(f"{folder}/b_2018-06-01.tif", bands=("B02", "B03", "B04", "B08", "SCL"))], folder)


def p_future_date(folder, env):
    return _prep(write_s2(f"{folder}/S2_20990101.tif"), folder)


def p_unparseable_date(folder, env):
    return _prep(write_s2(f"{folder}/scene.tif"), folder)


def p_extent_outside(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif"), folder, EXTENT="0,100,0,100 [EPSG:32631]")


def p_output_has_other_run(folder, env):
    out = _out(folder)
    os.makedirs(out)
    for name in ("s2_stack.tif", "dates.csv"):
        with open(os.path.join(out, name), "w") as handle:
            handle.write("an earlier run\n")
    return _prep(write_s2(f"{folder}/S2_20180601.tif"), folder)


def p_s1_one_polarisation(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif"), folder,
                 S1=[write_s1(f"{folder}/S1_20180601.tif", bands=("VV",))])


def p_mask_values(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif"), folder, MASK_VALID_VALUES="vegetation,water")


def p_all_cloudy(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif", scl=9), folder)


def p_s1_other_period(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif"), folder, S1=[write_s1(f"{folder}/S1_20160101.tif")])


def p_geographic_crs(folder, env):
    return _prep(write_s2(f"{folder}/S2_20180601.tif"), folder, CRS="EPSG:4326")


# ----------------------------------------------------------------------------- embed

def _embed(folder, env, s2=None, **extra):
    params = {"S2_STACK": s2 or env["stacks"]["S2_STACK"], "MODELS": env["models"], "TILE_SIZE": 32,
              "THREADS": 1, "DEVICE": 1, "OUTPUT_FOLDER": _out(folder)}
    params.update(extra)
    return "cameo:embed", params


def e_not_a_stack(folder, env):
    return _embed(folder, env, s2=write_s2(f"{folder}/S2_20180601.tif"))


def e_truncated_stack(folder, env):
    stacks = _stack_dir(folder, size=64, s1=False)
    return _embed(folder, env, s2=_truncate(stacks["S2_STACK"], f"{folder}/s2_cut.tif", 0.6))


def e_unsorted_dates(folder, env):
    stacks = _stack_dir(folder, s1=False)
    dates = [d.isoformat() for d in stacks["dates"]]
    dates[0], dates[1] = dates[1], dates[0]
    return _embed(folder, env, s2=_retag(stacks["S2_STACK"], f"{folder}/s2_edited.tif", CAMEO_DATES=",".join(dates)))


def e_garbled_dates(folder, env):
    stacks = _stack_dir(folder, s1=False)
    return _embed(folder, env, s2=_retag(stacks["S2_STACK"], f"{folder}/s2_edited.tif",
                                         CAMEO_DATES="2018-06-01,next week,2018-06-11,2018-06-16"))


def e_s1_as_s2(folder, env):
    return _embed(folder, env, s2=env["stacks"]["S1_STACK"])


def e_s2_as_s1(folder, env):
    return _embed(folder, env, S1_STACK=env["stacks"]["S2_STACK"])


def e_other_grid(folder, env):
    other = _stack_dir(folder, size=12)
    return _embed(folder, env, S1_STACK=other["S1_STACK"])


def e_extent_outside(folder, env):
    return _embed(folder, env, EXTENT="0,100,0,100 [EPSG:32631]")


def e_nan_stack(folder, env):
    from affine import Affine

    from models.stack import write_stack
    path = write_stack(f"{folder}/s2_stack.tif", np.full((3, 10, 16, 16), np.nan, "float32"), DATES[:3], S2_BANDS,
                       "EPSG:32631", Affine(10, 0, 500000, 0, -10, 5600000), "S2")
    return _embed(folder, env, s2=path)


def e_folder_has_other_run(folder, env):
    out = _out(folder)
    os.makedirs(out)
    with open(os.path.join(out, "embedding_2017-01-01.tif"), "w") as handle:
        handle.write("an earlier run\n")
    return _embed(folder, env)


def _models(folder, env):
    return copy_models(env["models"], os.path.join(folder, "models"))


def e_sha256_mismatch(folder, env):
    models = _models(folder, env)
    path = os.path.join(models, "cameo_fusion.onnx")
    data = bytearray(open(path, "rb").read())
    data[-10] ^= 0xFF
    open(path, "wb").write(bytes(data))
    return _embed(folder, env, MODELS=models)


def e_other_bands(folder, env):
    models = _models(folder, env)
    set_onnx_metadata(os.path.join(models, "cameo_s2_frame.onnx"),
                      cameo_bands='["B02","B03","B04","B08","B05","B06","B07","B8A","B11","B12"]')
    rewrite_manifest(models)
    return _embed(folder, env, MODELS=models)


def e_not_onnx(folder, env):
    models = _models(folder, env)
    with open(os.path.join(models, "cameo_fusion.onnx"), "wb") as handle:
        handle.write(b"\x80\x04\x95 this is not an ONNX model")
    rewrite_manifest(models)
    return _embed(folder, env, MODELS=models)


def e_metadata_missing(folder, env):
    models = _models(folder, env)
    set_onnx_metadata(os.path.join(models, "cameo_fusion.onnx"), cameo_output_names=None)
    rewrite_manifest(models)
    return _embed(folder, env, MODELS=models)


def e_metadata_garbled(folder, env):
    models = _models(folder, env)
    set_onnx_metadata(os.path.join(models, "cameo_s2_frame.onnx"), cameo_norm_std="[0.1, 0.2]")
    rewrite_manifest(models)
    return _embed(folder, env, MODELS=models)


def e_no_manifest(folder, env):
    models = _models(folder, env)
    os.remove(os.path.join(models, "SHA256SUMS"))
    return _embed(folder, env, MODELS=models)


def e_model_missing(folder, env):
    models = _models(folder, env)
    os.remove(os.path.join(models, "cameo_s1_frame.onnx"))
    return _embed(folder, env, MODELS=models)


def e_cuda_missing(folder, env):
    return _embed(folder, env, DEVICE=2)


# ----------------------------------------------------------------------------- embeddingrgb, modelinfo

def _rgb(folder, env, source=None, **extra):
    params = {"INPUT": source or env["embeddings"], "OUTPUT": os.path.join(_out(folder), "rgb.tif")}
    params.update(extra)
    os.makedirs(_out(folder), exist_ok=True)
    return "cameo:embeddingrgb", params


def r_bad_date(folder, env):
    return _rgb(folder, env, DATE="30/06/2018")


def r_date_absent(folder, env):
    return _rgb(folder, env, DATE="2019-06-30")


def r_stack_not_embedding(folder, env):
    return _rgb(folder, env, source=env["stacks"]["S2_STACK"])


def r_plain_raster(folder, env):
    return _rgb(folder, env, source=write_s2(f"{folder}/S2_20180601.tif"))


def r_truncated(folder, env):
    first = os.path.join(os.path.dirname(env["embeddings"]), f"embedding_{DATES[0].isoformat()}.tif")
    return _rgb(folder, env, source=_truncate(first, f"{folder}/embedding_cut.tif", 0.6))


def r_other_date_of_file(folder, env):
    first = os.path.join(os.path.dirname(env["embeddings"]), f"embedding_{DATES[0].isoformat()}.tif")
    return _rgb(folder, env, source=first, DATE=DATES[1].isoformat())


def m_zero_bytes(folder, env):
    open(f"{folder}/model.onnx", "wb").close()
    return "cameo:modelinfo", {"INPUT": f"{folder}/model.onnx"}


def m_truncated(folder, env):
    return "cameo:modelinfo", {"INPUT": _truncate(os.path.join(env["models"], "cameo_fusion.onnx"),
                                                  f"{folder}/model.onnx")}


CASES = [
    Case("prep-wrong-band-count", "cameo:preparestack", "7 bands, no descriptions, no S2_BANDS",
         r"Sentinel-2 band B02 is missing.*7 band\(s\) of '.*S2_20180601\.tif' have no recognisable name: "
         r"set S2_BANDS", p_wrong_band_count),
    Case("prep-unnamed-band-order", "cameo:preparestack", "11 bands in unknown order, no descriptions, "
         "S2_BANDS with 10 names", r"S2_BANDS names 10 band\(s\), but '.*' has 11 bands without names\. "
         r"Give one name per band in the file's order", p_unnamed_bands_order),
    Case("prep-band-missing", "cameo:preparestack", "B8A missing", r"Sentinel-2 band B8A is missing: no input "
         r"provides it\. Bands found: B02, .*; add the file\(s\) with B8A\.", p_band_missing),
    Case("prep-mixed-crs", "cameo:preparestack", "two files in different UTM zones, no overlap",
         r"The Sentinel-2 inputs do not overlap: .*Give files of the same area", p_mixed_crs),
    Case("prep-not-georeferenced", "cameo:preparestack", "raster without CRS and geotransform",
         r"has no georeferencing \(CRS and geotransform\)\. Give georeferenced rasters", p_not_georeferenced),
    Case("prep-truncated", "cameo:preparestack", "GeoTIFF cut in half",
         r"'.*S2_20180601\.tif' is damaged or incomplete: GDAL cannot read band .*Download or copy the file "
         r"again", p_truncated),
    Case("prep-zero-bytes", "cameo:preparestack", "zero-byte .tif",
         r"'.*S2_20180601\.tif' is not a raster that GDAL can read .*Give GeoTIFF", p_zero_bytes),
    Case("prep-garbage-tif", "cameo:preparestack", "TIFF header followed by garbage",
         r"'.*S2_20180601\.tif' is not a raster that GDAL can read .*Give GeoTIFF", p_garbage_tif),
    Case("prep-not-reflectance", "cameo:preparestack", "uint16 values all > 20000",
         r"Sentinel-2 band B02 of '.*' \(2018-06-01\) is not surface reflectance: after scaling its median is "
         r"2\.5.*Give Sentinel-2 L2A reflectance", p_not_reflectance),
    Case("prep-nan-everywhere", "cameo:preparestack", "float32 bands all NaN",
         r"No Sentinel-2 pixel of the 1 kept date\(s\) has data: every value is no data, NaN or infinite.*"
         r"check their no-data value", p_nan_everywhere),
    Case("prep-inf-everywhere", "cameo:preparestack", "float32 bands all +inf",
         r"No Sentinel-2 pixel of the 1 kept date\(s\) has data.*check their no-data value", p_inf_everywhere),
    Case("prep-s1-in-s2-slot", "cameo:preparestack", "Sentinel-1 VV/VH file given as S2",
         r"Sentinel-2 band B02 is missing.*Bands found: VH, VV\..*These are Sentinel-1 bands: give those files "
         r"as the Sentinel-1 input \(S1\)", p_s1_as_s2),
    Case("prep-s2-in-s1-slot", "cameo:preparestack", "Sentinel-2 file given as S1",
         r"Sentinel-1 band VV is missing.*These are Sentinel-2 bands: give those files as the Sentinel-2 input "
         r"\(S2\)", p_s2_as_s1),
    Case("prep-duplicate-dates", "cameo:preparestack", "two files of the same date with different bands",
         r"Sentinel-2 date 2018-06-01 has 2 acquisitions with different band sets .*Same-day acquisitions are "
         r"merged only when each carries the same bands",
         p_duplicate_dates),
    Case("prep-future-date", "cameo:preparestack", "file name with a date in 2099",
         r"Sentinel-2 date 2099-01-01 of '.*' is in the future .*Rename the file", p_future_date),
    Case("prep-unparseable-date", "cameo:preparestack", "no date in name or metadata",
         r"Cannot tell the acquisition date of '.*scene\.tif'.*Rename the file", p_unparseable_date),
    Case("prep-extent-outside", "cameo:preparestack", "extent far from the data",
         r"The processing extent .* does not overlap the Sentinel-2 data.*Choose an extent inside the data",
         p_extent_outside),
    Case("prep-folder-other-run", "cameo:preparestack", "output folder holds s2_stack.tif of another run",
         r"The output folder .* already holds a stack of another run \(s2_stack\.tif, dates\.csv\): choose an "
         r"empty folder", p_output_has_other_run),
    Case("prep-s1-one-polarisation", "cameo:preparestack", "Sentinel-1 with VV only",
         r"Sentinel-1 band VH is missing.*add the file\(s\) with VH", p_s1_one_polarisation),
    Case("prep-mask-values", "cameo:preparestack", "MASK_VALID_VALUES not integers",
         r"Mask valid values 'vegetation,water' are not a list of integers\. Write them comma-separated",
         p_mask_values),
    Case("prep-all-cloudy", "cameo:preparestack", "every date cloudy (SCL 9)",
         r"All 1 Sentinel-2 dates are too cloudy.*Lower MIN_VALID_FRACTION", p_all_cloudy),
    Case("prep-s1-other-period", "cameo:preparestack", "Sentinel-1 two years before Sentinel-2",
         r"No Sentinel-1 acquisition lies within MAX_S1_GAP_DAYS=6 days.*Give Sentinel-1 data of the same period",
         p_s1_other_period),
    Case("prep-geographic-crs", "cameo:preparestack", "target CRS EPSG:4326",
         r"CRS EPSG:4326 is geographic \(degrees\).*Choose a projected CRS", p_geographic_crs),
    Case("embed-not-a-stack", "cameo:embed", "a plain GeoTIFF as S2_STACK",
         r"is not a CAMEO time stack version 1 .*Prepare it with cameo:preparestack", e_not_a_stack),
    # QGIS 3.44 (GDAL 3.10) already refuses the cut file as a layer, before CAMEO runs,
    # with its own message that names the parameter (as for a zero-byte file, row 50).
    Case("embed-truncated-stack", "cameo:embed", "s2_stack.tif cut at 60 %",
         r"s2_cut\.tif is damaged or incomplete: GDAL cannot read it .*Prepare the stack again",
         e_truncated_stack, qgis_may_refuse="S2_STACK"),
    Case("embed-unsorted-dates", "cameo:embed", "stack whose CAMEO_DATES were edited out of order",
         r"The dates of '.*s2_edited\.tif' are not unique and ascending\. Prepare the stack again",
         e_unsorted_dates),
    Case("embed-garbled-dates", "cameo:embed", "stack whose CAMEO_DATES holds 'next week'",
         r"has a missing or garbled CAMEO_DATES/CAMEO_BANDS tag .*Prepare the stack again", e_garbled_dates),
    Case("embed-s1-in-s2-slot", "cameo:embed", "s1_stack.tif as S2_STACK",
         r"s1_stack\.tif is a S1 stack, not Sentinel-2: give the s2_stack\.tif", e_s1_as_s2),
    Case("embed-s2-in-s1-slot", "cameo:embed", "s2_stack.tif as S1_STACK",
         r"s2_stack\.tif is a S2 stack, not Sentinel-1: give the s1_stack\.tif", e_s2_as_s1),
    Case("embed-other-grid", "cameo:embed", "S1 stack of another grid",
         r"The Sentinel-1 and Sentinel-2 stacks are not on the same grid: prepare them together", e_other_grid),
    Case("embed-extent-outside", "cameo:embed", "extent outside the stack",
         r"does not overlap the stack s2_stack\.tif: choose an extent inside the data", e_extent_outside),
    Case("embed-nan-stack", "cameo:embed", "stack that is NaN everywhere",
         r"s2_stack\.tif has no valid Sentinel-2 observation in the extent .*Choose an extent with clear dates",
         e_nan_stack),
    Case("embed-folder-other-run", "cameo:embed", "output folder holds another run's embeddings",
         r"already holds embeddings of another run \(embedding_2017-01-01\.tif and 0 more\): choose an empty "
         r"folder", e_folder_has_other_run),
    Case("embed-sha256-mismatch", "cameo:embed", "model file with one flipped byte",
         r"cameo_fusion\.onnx does not match its sha256 in the manifest .*damaged or was replaced\. Use a "
         r"complete model folder", e_sha256_mismatch),
    Case("embed-onnx-other-bands", "cameo:embed", "ONNX metadata naming bands in another order",
         r"The Sentinel-2 stack has bands B02, .* but the S2 model expects B02, B03, B04, B08, .* in this order "
         r".*Prepare the stack with cameo:preparestack", e_other_bands),
    Case("embed-model-not-onnx", "cameo:embed", "model file that is not ONNX (listed in SHA256SUMS)",
         r"cameo_fusion\.onnx is not a readable ONNX model .*Use the models shipped with the plugin",
         e_not_onnx),
    Case("embed-metadata-missing", "cameo:embed", "fusion model without cameo_output_names",
         r"The metadata of cameo_fusion\.onnx lacks 'cameo_output_names': it is not a CAMEO fusion model",
         e_metadata_missing),
    Case("embed-metadata-garbled", "cameo:embed", "S2 model with 2 std values for 10 bands",
         r"The ONNX model's metadata has a garbled entry \(cameo_norm_mean / cameo_norm_std.*Use the models "
         r"shipped", e_metadata_garbled),
    Case("embed-no-manifest", "cameo:embed", "model folder without SHA256SUMS",
         r"Model cameo_s2_frame\.onnx is not listed in .*SHA256SUMS\. Use a complete model folder exported by "
         r"models/train", e_no_manifest),
    Case("embed-model-missing", "cameo:embed", "model folder lacking cameo_s1_frame.onnx",
         r"Model file .*cameo_s1_frame\.onnx is missing\. Use a complete model folder", e_model_missing),
    Case("embed-cuda-missing", "cameo:embed", "DEVICE cuda on an onnxruntime without CUDA",
         r"Device 'cuda' was asked for, but this onnxruntime has no CUDA support .*Install onnxruntime-gpu",
         e_cuda_missing),
    Case("rgb-bad-date", "cameo:embeddingrgb", "DATE 30/06/2018",
         r"DATE '30/06/2018' is not a date of the form YYYY-MM-DD", r_bad_date),
    Case("rgb-date-absent", "cameo:embeddingrgb", "DATE not in the VRT",
         r"Date 2019-06-30 is not in embeddings\.vrt, which holds 4 dates from 2018-06-01 to 2018-06-16: give "
         r"one of them", r_date_absent),
    Case("rgb-stack-not-embedding", "cameo:embeddingrgb", "s2_stack.tif as INPUT",
         r"s2_stack\.tif is a CAMEO time stack .*not an embedding: run cameo:embed on it first",
         r_stack_not_embedding),
    Case("rgb-plain-raster", "cameo:embeddingrgb", "a plain GeoTIFF as INPUT",
         r"S2_20180601\.tif is not a CAMEO embedding \(no CAMEO_DATE or CAMEO_DATES tag\): give a file written "
         r"by cameo:embed", r_plain_raster),
    Case("rgb-truncated", "cameo:embeddingrgb", "embedding GeoTIFF cut at 60 %",
         r"embedding_cut\.tif is damaged or incomplete: GDAL cannot read it .*Run cameo:embed again",
         r_truncated),
    Case("rgb-other-date-of-file", "cameo:embeddingrgb", "one date's file with another DATE",
         r"embedding_2018-06-01\.tif holds the embedding of 2018-06-01, not 2018-06-06: leave DATE empty",
         r_other_date_of_file),
    Case("modelinfo-zero-bytes", "cameo:modelinfo", "zero-byte .onnx",
         r"model\.onnx is not a readable ONNX model .*Choose a \.onnx file exported by CAMEO", m_zero_bytes),
    Case("modelinfo-truncated", "cameo:modelinfo", "ONNX file cut in half",
         r"model\.onnx is not a readable ONNX model \(.*INVALID_PROTOBUF.*Choose a \.onnx file", m_truncated),
]
