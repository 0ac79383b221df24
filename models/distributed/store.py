"""Durable per-tile results of a distributed run: `OUTPUT/.cameo-tiles/`.

One `.npy` file per finished tile ([T, E, h, w] float32, exactly the array the engine
computed), written under a temporary name and renamed when complete, so a file with a
final name is always a whole tile; temporaries of killed workers are never read.
`job.json` pins what the tiles belong to (stacks, window, tile size, models, device):
a run resumes only the same job. One client at a time holds `lock` (flock).
The folder is hidden and deleted once the per-date outputs are published; the
published `embeddings.vrt` (moved last) is what marks a finished run.
"""

import fcntl
import glob
import json
import os
import re
import shutil
import uuid

import numpy as np

from ..errors import CameoInputError
from ..embedding.outputs import STAGING_PREFIX

TILES_DIR = ".cameo-tiles"
JOB_NAME = "job.json"
LOCK_NAME = "lock"
TMP_MARK = ".tmp-"
_NAME = re.compile(r"r(\d+)_c(\d+)\.npy")


def tile_file_name(tile):
    return f"r{tile.row:06d}_c{tile.col:06d}.npy"


def tile_path(tiles_dir, tile):
    return os.path.join(tiles_dir, tile_file_name(tile))


def save_tile(tiles_dir, tile, array, before_rename=None):
    """Write `array` as the tile's file atomically (temporary name, fsync, rename)."""
    final = tile_path(tiles_dir, tile)
    tmp = f"{final}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as handle:
            np.lib.format.write_array(handle, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
            handle.flush()
            if before_rename is not None:
                before_rename(tmp)
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return final


def load_tile(tiles_dir, tile, shape):
    """The tile's array, or None when its file is missing, unreadable or of another shape."""
    path = tile_path(tiles_dir, tile)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != tuple(shape) or array.dtype != np.float32:
        return None
    return array


class TileStore:
    """The tile folder of one output folder, held (locked) by one client at a time."""

    def __init__(self, output_folder):
        self.output_folder = output_folder
        self.path = os.path.join(output_folder, TILES_DIR)
        self._lock = None

    def open(self, job, resume):
        """Create or reopen the folder for `job` (a JSON-able dict); returns the finished tile names."""
        os.makedirs(self.path, exist_ok=True)
        self._lock = open(os.path.join(self.path, LOCK_NAME), "a+")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            self._lock.close()
            self._lock = None
            raise CameoInputError(
                f"Another run is writing into {self.output_folder} right now: wait for it to finish, "
                "or choose another output folder.") from error
        try:
            return self._open_locked(job, resume)
        except BaseException:
            self.close()
            raise

    def _open_locked(self, job, resume):
        job_path = os.path.join(self.path, JOB_NAME)
        names = self.finished_names()
        if os.path.exists(job_path):
            with open(job_path, encoding="utf-8") as handle:
                try:
                    previous = json.load(handle)
                except ValueError:
                    previous = None
            if not resume and names:
                raise CameoInputError(
                    f"The output folder {self.output_folder} holds an interrupted run ({len(names)} tiles "
                    f"done): add --resume to finish it, or delete {self.path} to start over.")
            if resume and previous is not None and previous != job:
                changed = sorted(k for k in set(job) | set(previous) if job.get(k) != previous.get(k))
                raise CameoInputError(
                    f"The interrupted run in {self.output_folder} is another job ({', '.join(changed)} "
                    "differ): use the same stacks, extent, tile size, models and device, or another "
                    "output folder.")
        if not resume or not os.path.exists(job_path):
            for name in names:  # tiles without (or with a garbled) job.json cannot be trusted
                os.remove(os.path.join(self.path, name))
            names = []
        tmp = job_path + TMP_MARK + uuid.uuid4().hex
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(job, handle, indent=1, sort_keys=True)
        os.replace(tmp, job_path)
        self._remove_leftovers()
        return set(names)

    def _remove_leftovers(self):
        """Temporary tile files of killed workers, staging folders of a killed client."""
        for path in glob.glob(os.path.join(glob.escape(self.path), f"*{TMP_MARK}*")):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        for path in glob.glob(os.path.join(glob.escape(self.output_folder), STAGING_PREFIX + "*")):
            shutil.rmtree(path, ignore_errors=True)

    def finished_names(self):
        return sorted(name for name in os.listdir(self.path) if _NAME.fullmatch(name))

    def remove(self):
        """Delete the whole tile folder (after publishing)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def close(self, drop_if_empty=False):
        """Release the folder; with drop_if_empty, delete it when it holds no finished tile."""
        if drop_if_empty and self._lock is not None and not self.finished_names():
            shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None
