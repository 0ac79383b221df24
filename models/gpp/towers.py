"""Eddy-covariance GPP and Sentinel-2 footprint tables (numpy + csv only).

Daily or monthly GPP (`read_gpp`; `read_daily_gpp` refuses monthly files):
- FLUXNET2015 FULLSET daily files (`FLX_<SITE>_FLUXNET2015_FULLSET_DD_*.csv`, also the
  ICOS Warm Winter 2020 release): `TIMESTAMP` YYYYMMDD, `GPP_NT_VUT_REF` in g C m-2 d-1,
  quality `NEE_VUT_REF_QC` (fraction of measured or good-quality gap-filled data); a day
  is kept when GPP is not -9999 and its quality is >= 0.7 (method.md).
- Simple tables: a date column (`date`, `day` or `TIMESTAMP`, YYYY-MM-DD or YYYYMMDD) and
  one GPP column whose name states its units, e.g. `GPP_gC_m2_d`, `GPP [g C m-2 d-1]` or
  `GPP (umol m-2 s-1)` (converted with 12.011 g C per mol and 86400 s per day); or pass
  `units=` explicitly. Empty cells and -9999 are missing. An optional column named
  `*_QC` / `QC` is applied with the same >= 0.7 rule.
- Monthly: FLUXNET2015 FULLSET MM files (`TIMESTAMP` YYYYMM, GPP_NT_VUT_REF as the month's
  mean daily GPP, NEE_VUT_REF_QC the fraction of good data; months kept at >= 0.75) and
  tables with YYYY-MM dates (e.g. `date,GPP_gC_m2_d,NEE_VUT_REF_QC`).

Sentinel-2 footprint tables (`read_footprint`): one row per acquisition, a `date` column
and band reflectances named `B2`/`B02` ... `B12`, `B8A` (footprint means, e.g. the
e-shape sen2gpp export). The ten CAMEO bands B02 B03 B04 B05 B06 B07 B08 B8A B11 B12 are
kept. Screening rule (the towers' rows are not cloud- or snow-screened): a row is dropped
when any of the ten bands is missing or not positive, or when blue reflectance
B02 > 0.08 (clouds and snow are bright in the blue band; vegetated footprints stay far
below it).
"""

import csv
import datetime
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import CameoInputError
from ..stack.format import S2_BANDS

QUALITY_MIN = 0.7
QUALITY_MIN_MONTHLY = 0.75  # months: NEE_VUT_REF_QC is the fraction of good days
FLUXNET_GPP = "GPP_NT_VUT_REF"
FLUXNET_QC = "NEE_VUT_REF_QC"
MISSING = -9999.0
CAMEO_S2_BANDS = list(S2_BANDS)  # the encoders' band order
CLOUD_SNOW_B02 = 0.08
UMOL_TO_G_C_PER_DAY = 12.011e-6 * 86400.0  # 1 umol CO2 m-2 s-1 -> g C m-2 d-1

SCREEN_RULE = (f"rows dropped when a band is missing or <= 0, or B02 > {CLOUD_SNOW_B02} "
               "(cloud or snow)")


@dataclass
class GPPSeries:
    """Kept days or months (ascending datetime.date; a month as its first day), GPP in g C m-2 d-1."""
    dates: list
    gpp: np.ndarray
    source: str
    kind: str  # "fluxnet2015-dd", "fluxnet2015-mm" or "table"
    dropped_quality: int = 0
    dropped_missing: int = 0
    resolution: str = "daily"  # or "monthly": each value is the month's mean daily GPP

    def as_dict(self):
        return dict(zip(self.dates, self.gpp.tolist()))


@dataclass
class Footprint:
    """Screened Sentinel-2 footprint rows: dates, reflectance [T, 10] in CAMEO band order."""
    dates: list
    values: np.ndarray
    ndvi: np.ndarray  # the table's NDVI column if present, else from the band means
    source: str
    dropped: dict = field(default_factory=dict)
    ndvi_from_table: bool = False

    @property
    def nirv(self):
        """NIRv = NDVI x NIR reflectance (B08)."""
        return self.ndvi * self.values[:, CAMEO_S2_BANDS.index("B08")]


def _parse_date(text, where):
    text = (text or "").strip()
    try:
        if re.fullmatch(r"\d{8}", text):
            return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return datetime.date.fromisoformat(text[:10])
    except ValueError as error:
        raise CameoInputError(f"{where}: '{text}' is not a date (YYYY-MM-DD or YYYYMMDD).") from error


def _float(text):
    text = (text or "").strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return math.nan if value == MISSING else value


def _read_rows(path):
    if not os.path.isfile(path):
        raise CameoInputError(f"{path} does not exist: give a daily GPP file (FLUXNET2015 DD or date,GPP CSV).")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(handle, dialect)
        rows = [row for row in reader if row and not row[0].startswith("#")]
    if len(rows) < 2:
        raise CameoInputError(f"{path} holds no data rows.")
    return [h.strip() for h in rows[0]], rows[1:]


def units_factor(text):
    """Multiplier to g C m-2 d-1 for a units text (or a column name carrying it), else None."""
    s = text.lower().replace("µ", "u").replace("μ", "u")
    s = re.sub(r"[\s_\[\]\(\)\.\*\^{}]", "", s)
    s = s.replace("gpp", "", 1) if s.startswith("gpp") else s
    s = re.sub(r"(ntvutref|dtvutref|ntvut|dtvut|nt|dt)", "", s, count=1) if s[:2] in ("nt", "dt") else s
    s = s.replace("co2", "")
    day = r"(d|day)"
    gram = [rf"gcm-?2{day}-?1", rf"gcm2{day}", rf"gc/m2/{day}", rf"gcperm2per{day}", rf"gc/m-2/{day}",
            rf"gcm-2{day}"]
    umol = [r"umolm-?2s-?1", r"umolm2s", r"umol/m2/s"]
    if any(re.fullmatch(p, s) for p in gram):
        return 1.0
    if any(re.fullmatch(p, s) for p in umol):
        return UMOL_TO_G_C_PER_DAY
    return None


def _fluxnet_columns(header, name, units):
    upper = [h.upper() for h in header]
    if "TIMESTAMP" not in upper:
        raise CameoInputError(
            f"{name} is a FLUXNET2015 file without a TIMESTAMP column (half-hourly or hourly files have "
            "TIMESTAMP_START): give the daily or monthly FULLSET file (…_FULLSET_DD_… or …_FULLSET_MM_….csv).")
    if FLUXNET_GPP not in header:
        raise CameoInputError(
            f"{name} is a FLUXNET2015 file without the column {FLUXNET_GPP} (nighttime-partitioned GPP, "
            "variable USTAR threshold, reference): give the FULLSET file, which has it.")
    if FLUXNET_QC not in header:
        raise CameoInputError(f"{name} has {FLUXNET_GPP} but not its quality column {FLUXNET_QC}: give the "
                              "FULLSET file, which has both.")
    factor = 1.0
    if units is not None:
        factor = units_factor(units)
        if factor is None:
            raise CameoInputError(f"Units '{units}' are not recognised: use g C m-2 d-1 or umol m-2 s-1.")
    return upper.index("TIMESTAMP"), header.index(FLUXNET_GPP), header.index(FLUXNET_QC), "fluxnet2015", factor


def _table_columns(header, name, units):
    lower = [h.lower() for h in header]
    it = next((lower.index(c) for c in ("date", "day", "month", "timestamp", "time") if c in lower), None)
    gpp_cols = [i for i, h in enumerate(lower) if "gpp" in h and not h.endswith("qc")]
    if it is None or not gpp_cols:
        raise CameoInputError(
            f"{name} is neither a FLUXNET2015 file (no TIMESTAMP and {FLUXNET_GPP}) nor a table with a "
            f"'date' column and a GPP column (its columns: {', '.join(header[:8])}).")
    if len(gpp_cols) > 1:
        raise CameoInputError(f"{name} has several GPP columns ({', '.join(header[i] for i in gpp_cols)}): "
                              "keep one.")
    ig = gpp_cols[0]
    factor = units_factor(units) if units is not None else units_factor(header[ig])
    if factor is None:
        given = f"units '{units}'" if units is not None else f"column '{header[ig]}'"
        raise CameoInputError(
            f"{name}: cannot recognise the GPP units from the {given}. Name the column with its units, e.g. "
            "GPP_gC_m2_d or 'GPP (umol m-2 s-1)', or pass the units (g C m-2 d-1 or umol m-2 s-1).")
    qc = [i for i, h in enumerate(lower) if h == "qc" or h.endswith("_qc")]
    return it, ig, (qc[0] if qc else None), "table", factor


def _resolution(text, where):
    """'monthly' for YYYYMM / YYYY-MM dates, 'daily' for YYYYMMDD / YYYY-MM-DD."""
    text = (text or "").strip()
    if re.fullmatch(r"\d{6}|\d{4}-\d{2}", text):
        return "monthly"
    if re.fullmatch(r"\d{8}|\d{4}-\d{2}-\d{2}.*", text):
        return "daily"
    raise CameoInputError(f"{where}: '{text}' is not a date (YYYY-MM-DD, YYYYMMDD) or a month (YYYY-MM, YYYYMM).")


def _parse_month(text, where):
    text = text.strip().replace("-", "")
    try:
        return datetime.date(int(text[:4]), int(text[4:6]), 1)
    except ValueError as error:
        raise CameoInputError(f"{where}: '{text}' is not a month (YYYY-MM or YYYYMM).") from error


def read_gpp(path, units=None, quality_min=None):
    """Daily or monthly GPP (g C m-2 d-1) from a FLUXNET2015 FULLSET DD/MM file or a table.

    The resolution follows the dates: YYYYMMDD / YYYY-MM-DD daily, YYYYMM / YYYY-MM monthly
    (a month's value is the mean of its daily GPP; `dates` are then the months' first
    days). Quality: kept when >= 0.7 (daily, method.md) or >= 0.75 (monthly) unless given."""
    header, rows = _read_rows(path)
    name = os.path.basename(path)
    upper = [h.upper() for h in header]
    has_date = any(h.lower() in ("date", "day", "month", "time") for h in header)
    fluxnet = "TIMESTAMP" in upper or "TIMESTAMP_START" in upper or (FLUXNET_GPP in header and not has_date)
    it, ig, iq, kind, factor = (_fluxnet_columns if fluxnet else _table_columns)(header, name, units)
    resolution = _resolution(rows[0][it] if len(rows[0]) > it else "", f"{name}, line 2")
    parse = _parse_month if resolution == "monthly" else _parse_date
    if quality_min is None:
        quality_min = QUALITY_MIN_MONTHLY if resolution == "monthly" else QUALITY_MIN
    by_date = {}
    low_quality = missing = 0
    for number, row in enumerate(rows, start=2):
        if len(row) <= max(it, ig, iq if iq is not None else 0):
            continue
        date = parse(row[it], f"{name}, line {number}")
        value = _float(row[ig])
        if not math.isfinite(value):
            missing += 1
            continue
        if iq is not None and not (_float(row[iq]) >= quality_min):
            low_quality += 1
            continue
        if date in by_date:
            shown = f"{date:%Y-%m}" if resolution == "monthly" else str(date)
            raise CameoInputError(f"{name}: {shown} appears twice.")
        by_date[date] = value * factor
    if not by_date:
        raise CameoInputError(f"{name} has no {'month' if resolution == 'monthly' else 'day'} with valid GPP "
                              f"(quality >= {quality_min}).")
    dates = sorted(by_date)
    return GPPSeries(dates, np.asarray([by_date[d] for d in dates], np.float64), path,
                     f"{kind}-{'mm' if resolution == 'monthly' else 'dd'}" if kind == "fluxnet2015" else kind,
                     low_quality, missing, resolution)


def read_daily_gpp(path, units=None, quality_min=QUALITY_MIN):
    """Daily GPP only (read_gpp, refusing monthly files)."""
    series = read_gpp(path, units, quality_min)
    if series.resolution != "daily":
        raise CameoInputError(f"{os.path.basename(path)} holds monthly GPP; daily GPP is needed here.")
    return series


def _band_column(header, band):
    """Index of CAMEO band `band` (B02) in a header that may say B2, B02 or B02 (490 nm)."""
    number = band[1:]
    names = {band.lower(), ("b" + number.lstrip("0")).lower()}
    for i, h in enumerate(header):
        h = h.strip().lower()
        if h in names or h.split(" ")[0] in names:
            return i
    return None


def read_footprint(path, screen=True):
    """Screened footprint reflectances (see the module docstring)."""
    header, rows = _read_rows(path)
    name = os.path.basename(path)
    lower = [h.lower() for h in header]
    it = next((lower.index(c) for c in ("date", "day", "timestamp", "time") if c in lower), None)
    if it is None:
        raise CameoInputError(f"{name} has no 'date' column: a footprint table needs one row per "
                              "acquisition with a date and the band reflectances.")
    cols = {band: _band_column(header, band) for band in CAMEO_S2_BANDS}
    missing = [band for band, i in cols.items() if i is None]
    if missing:
        raise CameoInputError(f"{name} lacks the Sentinel-2 band(s) {', '.join(missing)}; the CAMEO "
                              f"encoders need {' '.join(CAMEO_S2_BANDS)}.")
    i_ndvi = lower.index("ndvi") if "ndvi" in lower else None
    dates, values, ndvi = [], [], []
    for number, row in enumerate(rows, start=2):
        dates.append(_parse_date(row[it], f"{name}, line {number}"))
        values.append([_float(row[cols[b]]) if cols[b] < len(row) else math.nan for b in CAMEO_S2_BANDS])
        ndvi.append(_float(row[i_ndvi]) if i_ndvi is not None and i_ndvi < len(row) else math.nan)
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    if finite.size and np.median(finite) > 2:
        values = values / 10000.0  # digital numbers of L2A (pre-2022 baseline, no offset)
    ndvi = np.asarray(ndvi, np.float64)
    if i_ndvi is None:
        b4, b8 = values[:, 2], values[:, 6]
        ndvi = (b8 - b4) / (b8 + b4)
    order = np.argsort(np.asarray([d.toordinal() for d in dates]), kind="stable")
    dates = [dates[i] for i in order]
    values, ndvi = values[order], ndvi[order]
    if len(set(dates)) != len(dates):
        raise CameoInputError(f"{name}: a date appears twice; give one row per acquisition date.")
    dropped = {"missing": 0, "cloud_snow": 0}
    if screen:
        bad_values = ~np.all(np.isfinite(values) & (values > 0), axis=1)
        cloud = ~bad_values & (values[:, 0] > CLOUD_SNOW_B02)
        keep = ~bad_values & ~cloud
        dropped = {"missing": int(bad_values.sum()), "cloud_snow": int(cloud.sum())}
        dates = [d for d, k in zip(dates, keep) if k]
        values, ndvi = values[keep], ndvi[keep]
    if not dates:
        raise CameoInputError(f"{name}: no row left after screening ({SCREEN_RULE}).")
    return Footprint(dates, values.astype(np.float32), ndvi, path, dropped, i_ndvi is not None)
