"""Helpers (no tests) of the reliability suite: tiny inputs, checksums, runners.

Everything here is small on purpose (16 x 16 px rasters, a few dates) so that the
whole suite stays fast on two shared CPU cores.
"""

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import rasterio
from affine import Affine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S2_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
S1_BANDS = ("VV", "VH")
ORIGIN = (500000.0, 5600000.0)


# ----------------------------------------------------------------------------- checksums

def tree_digest(*paths):
    """{path: sha256} of every file under `paths` (files or folders), for before/after checks.

    `.aux.xml` sidecars are left out: QGIS (GDAL's PAM) may write one beside a raster it
    loaded as a layer parameter, to cache band statistics; the raster itself never changes.
    """
    digests = {}
    for top in paths:
        top = str(top)
        if os.path.isfile(top):
            digests[top] = _sha256(top)
            continue
        for folder, _, names in os.walk(top):
            for name in names:
                if name.endswith(".aux.xml"):
                    continue
                path = os.path.join(folder, name)
                digests[path] = _sha256(path)
    return digests


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def listing(folder):
    """Every file and folder below `folder` (relative paths, hidden ones included)."""
    folder = str(folder)
    if not os.path.exists(folder):
        return None
    found = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            found.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(found)


FINISHED_NAMES = ("s2_stack.tif", "s1_stack.tif", "dates.csv", "embeddings.vrt")


def finished_looking(folder):
    """Files in `folder` (not hidden, not below hidden folders) that look like a finished output."""
    out = []
    for name in listing(folder) or []:
        parts = name.split(os.sep)
        if any(p.startswith(".") for p in parts):
            continue
        base = parts[-1]
        if base in FINISHED_NAMES or (base.startswith("embedding_") and base.endswith(".tif")) \
                or base.endswith((".tif", ".vrt", ".csv", ".png")):
            out.append(name)
    return out


# ----------------------------------------------------------------------------- inputs

def profile(count, dtype, size=16, crs="EPSG:32631", res=10.0, origin=ORIGIN, nodata=0):
    return dict(driver="GTiff", width=size, height=size, count=count, dtype=dtype, nodata=nodata,
                crs=crs, transform=Affine(res, 0, origin[0], 0, -res, origin[1]))


def write_s2(path, *, values=None, dn=2000, scl=4, size=16, bands=S2_BANDS + ("SCL",), dtype="uint16",
             describe=True, crs="EPSG:32631", origin=ORIGIN, nodata=0, tags=None, georeferenced=True):
    """A one-date Sentinel-2 GeoTIFF (10 m): every band `dn` (or `values[i]`), SCL band `scl`."""
    prof = profile(len(bands), dtype, size, crs, 10.0, origin, nodata)
    if not georeferenced:
        prof.pop("crs")
        prof.pop("transform")
    rng = np.random.default_rng(len(str(path)))
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **prof) as data:
        for i, band in enumerate(bands, start=1):
            if band == "SCL":
                array = np.full((size, size), scl, dtype)
            elif values is not None:
                array = np.full((size, size), values[i - 1], dtype)
            else:
                array = (dn + rng.integers(0, 50, (size, size))).astype(dtype)
            data.write(array, i)
            if describe:
                data.set_band_description(i, band)
        if tags:
            data.update_tags(**tags)
    return str(path)


def write_s1(path, *, vv=-10.0, vh=-17.0, size=8, bands=S1_BANDS, origin=ORIGIN, crs="EPSG:32631"):
    """A one-date Sentinel-1 GeoTIFF (20 m, float32 dB), bands described VV, VH."""
    prof = profile(len(bands), "float32", size, crs, 20.0, origin, None)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **prof) as data:
        for i, band in enumerate(bands, start=1):
            data.write(np.full((size, size), vv if band == "VV" else vh, "float32"), i)
            data.set_band_description(i, band)
    return str(path)


def s2_series(folder, dates, **kw):
    """One write_s2 file per date, named S2_YYYYMMDD.tif."""
    os.makedirs(folder, exist_ok=True)
    return [write_s2(os.path.join(folder, f"S2_{d:%Y%m%d}.tif"), **kw) for d in dates]


def s1_series(folder, dates, **kw):
    os.makedirs(folder, exist_ok=True)
    return [write_s1(os.path.join(folder, f"S1_{d:%Y%m%d}.tif"), **kw) for d in dates]


DATES = [dt.date(2018, 6, 1) + dt.timedelta(days=5 * i) for i in range(4)]


def tiny_stacks(folder, n_dates=4, size=16, seed=0, s1=True):
    """A CAMEO S2 (+ S1) stack pair written with models.stack.write_stack: {S2_STACK, S1_STACK}."""
    from models.stack import write_stack

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    dates = [dt.date(2018, 6, 1) + dt.timedelta(days=5 * i) for i in range(n_dates)]
    transform = Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    s2 = rng.uniform(0.01, 0.4, (n_dates, 10, size, size)).astype("float32")
    s2[:, :, :2, :3] = np.nan
    out = {"S2_STACK": write_stack(os.path.join(folder, "s2_stack.tif"), s2, dates, S2_BANDS, "EPSG:32631",
                                   transform, "S2", CAMEO_UNITS="reflectance",
                                   CAMEO_VALID_FRACTION=",".join("0.98" for _ in dates))}
    if s1:
        values = rng.uniform(-25, -5, (n_dates, 2, size, size)).astype("float32")
        out["S1_STACK"] = write_stack(os.path.join(folder, "s1_stack.tif"), values, dates, S1_BANDS,
                                      "EPSG:32631", transform, "S1", CAMEO_UNITS="dB",
                                      CAMEO_S1_DATES=",".join(d.isoformat() for d in dates),
                                      CAMEO_S1_GAP_DAYS=",".join("0" for _ in dates))
    out["dates"] = dates
    return out


def write_embedding(path, date, height=1100, width=4, seed=0):
    """A one-date embedding GeoTIFF as cameo:embed writes it (7 bands, CAMEO_DATE tag), tall and thin
    so that Embedding to RGB works through it in several blocks."""
    rng = np.random.default_rng(seed)
    prof = profile(7, "float32", 1, nodata=float("nan"))
    prof.update(width=width, height=height)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **prof) as data:
        data.write(rng.normal(size=(7, height, width)).astype("float32"))
        data.update_tags(CAMEO_DATE=date.isoformat())
    return str(path)


def copy_models(source, target):
    shutil.copytree(str(source), str(target))
    return str(target)


def rewrite_manifest(models_dir):
    from models.manifest import write_manifest

    names = [n for n in os.listdir(models_dir) if n.endswith(".onnx")]
    return write_manifest(str(models_dir), names)


def set_onnx_metadata(path, **changes):
    """Change (or with value None remove) metadata entries of the ONNX file at `path`, in place."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


# ----------------------------------------------------------------------------- running

def run_python(code, *, cwd=REPO, timeout=300, env=None, prefix=()):
    """Run `code` in a fresh Python (this venv) as a real subprocess; returns CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([*prefix, sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
