"""Step 5 of a preparation, scaling: how the raw values of each band become surface reflectance.

reflectance = (raw + dn_offset) * scale + extra_offset, decided once per date, acquisition
and band from the metadata (scale_factor/add_offset, BOA_ADD_OFFSET, PROCESSING_BASELINE,
'harmonized'), the kind of input (float reflectance or integer DN) and the date (the -1000
DN offset of processing baseline 04.00, from 2022-01-25). Every rule used goes to the log.
"""

import math

import numpy as np
from rasterio.windows import Window

from ..errors import CameoInputError
from .defaults import BASELINE_04_START, BASELINE_OFFSET_DN
from .format import S2_BANDS
from .resample import read_band


def scaling_rules(pool, s2_table, dates, harmonized, progress):
    """Scaling per (date, acquisition, band), decided once from metadata; the rules used go to the log."""
    scaling, boa_by_date, rules = {}, [], {}
    for date in dates:
        offsets = set()
        for k, bands in enumerate(s2_table[date]):
            for band in S2_BANDS:
                ref = bands[band]
                rule = scaling[(date, k, band)] = _s2_scaling(ref, harmonized, pool)
                _check_reflectance(ref, pool, *rule[:3])
                offsets.add(rule[0])
                rules.setdefault(_describe_scaling(ref, rule), []).append(date)
        boa_by_date.append(min(offsets))
    for text, used in rules.items():
        progress.pushInfo(f"Scaling of {len(set(used))} date(s): {text}.")
    return scaling, boa_by_date


def _describe_scaling(ref, rule):
    dn_offset, scale, extra, why = rule
    source = ("scale_factor/add_offset of the input" if (ref.scale, ref.offset) != (1.0, 0.0)
              else "detected: float reflectance" if scale == 1.0 else "detected: integer DN")
    return (f"reflectance = (value{dn_offset:+g}) x {scale:g}{extra:+g} ({source}; BOA offset: {why})"
            if extra else f"reflectance = (value{dn_offset:+g}) x {scale:g} ({source}; BOA offset: {why})")


def _s2_scaling(ref, harmonized, pool):
    """(dn_offset, scale, extra_offset, rule) so that reflectance = (raw + dn_offset) * scale + extra_offset."""
    scale, extra = ref.scale, ref.offset
    reflectance_input = False
    if scale == 1.0 and extra == 0.0:
        if np.dtype(ref.dtype).kind == "f":
            sample = central_sample(pool, ref)
            reflectance_input = sample.size > 0 and float(np.nanmedian(sample)) <= 2.0
        scale = 1.0 if reflectance_input else 1e-4
    if ref.offset != 0.0:
        return 0.0, scale, extra, "offset from the band's metadata"
    if harmonized == "yes":
        return 0.0, scale, extra, "harmonised (HARMONIZED=yes)"
    post = ref.date is not None and ref.date >= BASELINE_04_START
    dn_offset = BASELINE_OFFSET_DN if post else 0.0
    if harmonized == "no":
        return dn_offset, scale, extra, "by date (HARMONIZED=no)"
    # auto: metadata first, then the kind of input, then the date.
    for key, value in ref.tags.items():
        upper = key.upper()
        if "BOA_ADD_OFFSET" in upper:
            try:
                return float(value), scale, extra, f"metadata {key}"
            except ValueError:
                pass
    for key, value in ref.tags.items():
        if key.upper().endswith("PROCESSING_BASELINE"):
            try:
                baseline = float(value)
            except ValueError:
                continue
            return (BASELINE_OFFSET_DN if baseline >= 4.0 else 0.0), scale, extra, f"metadata {key}={value}"
    for key, value in ref.tags.items():
        if "HARMONIZED" in key.upper() or "HARMONIZED" in str(value).upper():
            return 0.0, scale, extra, "metadata says harmonised"
    if reflectance_input:
        return 0.0, scale, extra, "float reflectance input, taken as harmonised"
    return dn_offset, scale, extra, "by date"


def central_sample(pool, ref, size=256):
    dataset = pool.get(ref.path)
    w, h = min(size, ref.grid.width), min(size, ref.grid.height)
    window = Window((ref.grid.width - w) // 2, (ref.grid.height - h) // 2, w, h)
    raw = read_band(dataset, ref, window).astype("float64")
    for nodata in (ref.nodata, ref.fill_max):
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            raw[raw == nodata] = np.nan
    raw = raw * ref.scale + ref.offset
    return raw[np.isfinite(raw)]


def _check_reflectance(ref, pool, dn_offset, scale, extra):
    """Refuse values that cannot be surface reflectance after scaling (e.g. DNs all above 20000)."""
    sample = central_sample(pool, ref)
    if sample.size == 0:
        return
    median = float(np.median((sample + dn_offset) * scale + extra))
    if median > 2.0:
        raise CameoInputError(
            f"Sentinel-2 band {ref.band} of '{ref.label}' ({ref.date}) is not surface reflectance: after "
            f"scaling its median is {median:.3g} (raw median {float(np.median(sample)):.6g}), but L2A "
            "reflectance lies between 0 and about 1.6 (DN 0-16000). Give Sentinel-2 L2A reflectance (DN, "
            "or floats 0-1); if the values carry a scale factor, set it as the band's scale metadata.")


def reflectance_converter(dn_offset, scale, extra):
    """In-place float32 (raw + dn_offset) * scale + extra, for read_onto's `convert`."""
    def convert(data):
        if dn_offset:
            data += np.float32(dn_offset)
        data *= np.float32(scale)
        if extra:
            data += np.float32(extra)
        return data
    return convert
