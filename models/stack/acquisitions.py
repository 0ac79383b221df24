"""Acquisitions of one Sentinel-2 day: grouping, B8A substitution, and the per-pixel merge.

Two acquisitions of the same day (adjacent tiles or orbits, in one cube or in two inputs)
become one date of the stack: per pixel, a valid observation (by the mask) wins over an
invalid one; where both are valid, the acquisition with more valid pixels in the extent
wins (ties: the one given first).
"""

import numpy as np

from ..errors import CameoInputError

_GROUPINGS = (
    lambda r: (r.stamp, r.ordinal),           # a cube's time steps (10 m and 20 m files share them)
    lambda r: (r.ordinal,),                    # the n-th step of that day, when the times differ slightly
    lambda r: (r.label, r.stamp, r.ordinal),   # separate inputs (two GeoTIFFs of one day)
)


def finest_of_products(refs):
    """One product offering a band at two resolutions (SAFE): keep the finest."""
    kept = []
    for ref in refs:
        rival = next((k for k in kept if ref.container and k.container == ref.container and k.band == ref.band
                      and k.resolution != ref.resolution), None)
        if rival is None:
            kept.append(ref)
        elif ref.resolution < rival.resolution:
            kept[kept.index(rival)] = ref
    return kept


def split_acquisitions(role, date, refs):
    """[{band: BandRef}, ...], one dict per acquisition of `date`, in the order given."""
    bands = [r.band for r in refs]
    if len(set(bands)) == len(bands):
        return [{r.band: r for r in refs}]
    for grouping in _GROUPINGS:
        groups = {}
        clash = False
        for ref in refs:
            group = groups.setdefault(grouping(ref), {})
            clash |= ref.band in group
            group[ref.band] = ref
        band_sets = {tuple(sorted(g)) for g in groups.values()}
        if not clash and len(band_sets) == 1:
            return list(groups.values())
    described = "; ".join(f"'{next(iter(g.values())).label}' has {', '.join(sorted(g))}" for g in groups.values())
    raise CameoInputError(
        f"{role} date {date} has {len(groups)} acquisitions with different band sets ({described}). "
        "Same-day acquisitions are merged only when each carries the same bands: give the missing bands, "
        "or remove one of them.")


def substitute_b8a(table):
    """Take B8A from B08 in every acquisition that lacks it; returns the dates concerned."""
    dates = []
    for date, acquisitions in sorted(table.items()):
        for bands in acquisitions:
            if "B8A" not in bands and "B08" in bands:
                bands["B8A"] = bands["B08"]
                if not dates or dates[-1] != date:
                    dates.append(date)
    return dates


def priority(counts):
    """Acquisition indices by valid pixels in the extent, most first (stable: ties keep the given order)."""
    return sorted(range(len(counts)), key=lambda k: -counts[k])


def merge_into(out, filled, valid, arrays):
    """Copy `arrays` (one per band) into `out` where `valid` and not yet `filled`; updates `filled`."""
    take = valid & ~filled
    for target, data in zip(out, arrays):
        target[take] = data[take]
    filled |= take


def empty_bands(count, shape):
    return [np.full(shape, np.nan, dtype="float32") for _ in range(count)]
