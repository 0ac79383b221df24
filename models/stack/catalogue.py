"""Step 1 of a preparation: catalogue the inputs (bands, dates, grids) without reading pixels.

Every check that needs only metadata happens here, so bad input stops before any pixel
is read or any file written.
"""

import datetime as _dt
from dataclasses import dataclass

from ..errors import CameoInputError
from .acquisitions import substitute_b8a as take_b8a_from_b08
from .format import S1_BANDS, S2_BANDS
from .grid import check_footprint
from .options import parse_band_orders
from .sources import build_catalog

S2_WANTED = set(S2_BANDS) | {"SCL"}


@dataclass
class Sentinel2Inputs:
    """The Sentinel-2 inputs by date: `table[date]` is one {band: BandRef} per acquisition of that day."""

    catalog: object
    table: dict
    substituted: list   # dates whose B8A is B08 (SUBSTITUTE_B8A)

    @property
    def refs(self):
        return [ref for acquisitions in self.table.values() for bands in acquisitions for ref in bands.values()]

    @property
    def dates(self):
        return sorted(self.table)


@dataclass
class Sentinel1Inputs:
    """The Sentinel-1 inputs: `table[date]` is {'VV': BandRef, 'VH': BandRef}."""

    table: dict

    @property
    def dates(self):
        return sorted(self.table)

    @property
    def refs(self):
        return [ref for bands in self.table.values() for ref in bands.values()]


def catalogue_s2(paths, s2_bands, substitute):
    """The Sentinel-2 inputs, every band of the models present (B8A from B08 if `substitute`)."""
    orders = parse_band_orders(s2_bands)
    catalog = build_catalog(paths, "Sentinel-2", orders, wanted=S2_WANTED)
    _check_band_orders(catalog, orders)
    table = catalog.acquisitions(S2_WANTED)
    check_not_future(table, "Sentinel-2")
    substituted = take_b8a_from_b08(table) if substitute else []
    present = {band for acquisitions in table.values() for bands in acquisitions for band in bands}
    for band in S2_BANDS:
        if band not in present:
            raise missing_band_error(catalog, band)
    return Sentinel2Inputs(catalog, table, substituted)


def catalogue_s1(paths, grid):
    """The Sentinel-1 inputs: VV and VH for every acquisition, overlapping the grid."""
    catalog = build_catalog(paths, "Sentinel-1", wanted=set(S1_BANDS))
    table = catalog.by_date(set(S1_BANDS))
    check_not_future(table, "Sentinel-1")
    for band in S1_BANDS:
        if band not in set(catalog.bands()):
            raise missing_band_error(catalog, band, "Sentinel-1")
    for date, bands in table.items():
        if len(bands) < 2:
            raise CameoInputError(
                f"Sentinel-1 date {date} has only {', '.join(bands)}. Give VV and VH for every acquisition."
            )
    inputs = Sentinel1Inputs(table)
    check_footprint(inputs.refs, grid, "Sentinel-1")
    return inputs


def check_complete_dates(table, substitute):
    """Every acquisition carries all 10 bands."""
    for date, acquisitions in sorted(table.items()):
        for bands in acquisitions:
            missing = [b for b in S2_BANDS if b not in bands]
            if missing:
                hint = (" (or set SUBSTITUTE_B8A to take B8A from B08)"
                        if missing == ["B8A"] and not substitute else "")
                raise CameoInputError(
                    f"Sentinel-2 date {date} lacks band(s) {', '.join(missing)} (it has {', '.join(sorted(bands))}). "
                    f"Give all 10 bands for every date{hint}, or remove that date's files."
                )


def report_inputs(progress, s2):
    """Log where cubes' georeferencing came from, the merged days and the B8A substitution."""
    for label, source in sorted(s2.catalog.georeferencing.items()):
        progress.pushInfo(f"Georeferencing of '{label}': {source}.")
    merged = [(date, len(acq)) for date, acq in sorted(s2.table.items()) if len(acq) > 1]
    if merged:
        progress.pushInfo(
            f"Merged same-day acquisitions per pixel on {len(merged)} date(s): "
            + ", ".join(f"{date} ({count} acquisitions)" for date, count in merged)
            + "; a valid observation beats an invalid one, and where both are valid the acquisition with "
            "more valid pixels in the extent wins.")
    if s2.substituted:
        substituted = s2.substituted
        progress.pushInfo(
            f"SUBSTITUTE_B8A: band B8A (865 nm, 20 m) is taken from B08 (842 nm, 10 m) on {len(substituted)} of "
            f"{len(s2.table)} date(s) ({substituted[0]}..{substituted[-1]}); the embeddings differ from those of "
            "real B8A (see the README).")


def missing_band_error(catalog, band, role="Sentinel-2"):
    found = sorted(set(catalog.names_found))
    unnamed = ""
    if catalog.unnamed:
        label, count = next(iter(catalog.unnamed.items()))
        unnamed = (f" {count} band(s) of '{label}' have no recognisable name: set S2_BANDS "
                   "(e.g. B02,B03,B04,B08) or band descriptions.")
    swapped = ""
    if role == "Sentinel-2" and found and set(found) <= set(S1_BANDS):
        swapped = (" These are Sentinel-1 bands: give those files as the Sentinel-1 input (S1) and "
                   "Sentinel-2 L2A files as S2.")
    elif role == "Sentinel-1" and set(found) & set(S2_BANDS):
        swapped = (" These are Sentinel-2 bands: give those files as the Sentinel-2 input (S2) and "
                   "Sentinel-1 VV/VH files as S1.")
    substitute = ""
    if role == "Sentinel-2" and band == "B8A" and "B08" in found:
        substitute = (" Or set SUBSTITUTE_B8A (command line: --substitute-b8a) to take B8A from B08, which "
                      "changes the embeddings somewhat (see the README).")
    return CameoInputError(
        f"{role} band {band} is missing: no input provides it. Bands found: "
        f"{', '.join(found) if found else 'none'}.{unnamed} The models need "
        f"{' '.join(S2_BANDS if role == 'Sentinel-2' else S1_BANDS)}; add the file(s) with {band}.{swapped}{substitute}"
    )


def _check_band_orders(catalog, orders):
    """S2_BANDS given, but no order has as many names as an unnamed file has bands."""
    if not orders or not catalog.unnamed:
        return
    label, count = next(iter(catalog.unnamed.items()))
    if all(len(order) != count for order in orders):
        given = " or ".join(str(len(order)) for order in orders)
        raise CameoInputError(
            f"S2_BANDS names {given} band(s), but '{label}' has {count} bands without names. Give one name "
            f"per band in the file's order (e.g. B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12,SCL for 11 bands).")


def check_not_future(table, role):
    """Acquisition dates after today (UTC) come from a misread file name or tag."""
    today = _dt.datetime.now(_dt.timezone.utc).date()
    for date in sorted(d for d in table if d is not None and d > today):
        entry = table[date][0] if isinstance(table[date], list) else table[date]
        label = next(iter(entry.values())).label
        raise CameoInputError(
            f"{role} date {date} of '{label}' is in the future (today is {today}): it was read wrongly from "
            "the file name or metadata. Rename the file to contain the acquisition date as YYYYMMDD, or set "
            "a DATE=YYYY-MM-DD tag.")
