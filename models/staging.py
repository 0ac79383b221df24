"""Work-in-progress files of a run, and removing those left behind by runs that died.

Writers stage their output under hidden names (a `.cameo-partial-*` folder, a
`.<name>.tmp-*` file) and rename it into place when complete. A run that is killed
(SIGKILL, power cut, QGIS crash) cannot clean up, so its staged files would pile up,
each as large as a finished output. Every staged item therefore carries an advisory
lock (flock) for as long as its run lives; the operating system drops the lock when the
process ends, however it ends. The next run into the same folder removes the staged
items whose lock it can take: their owner is gone. Live runs hold their locks, so
concurrent runs into one folder never lose each other's work.

Where flock does not exist (Windows) nothing is locked and nothing is swept.
"""

import contextlib
import glob
import os
import shutil
import time

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

STAGING_LOCK_NAME = ".lock"  # inside a staging folder
# A staged item younger than this is never swept: it may belong to a run that has
# created it but not locked it yet.
MIN_AGE_SECONDS = 60.0


class StagingLock:
    """An exclusive flock on `path` (created if missing), held until `release()`.

    Best effort: on a file system without flock the item stays unlocked, and then the
    sweep cannot lock it either, so it is never removed while its run is alive."""

    def __init__(self, path):
        self.path = path
        self._fd = None
        if fcntl is None:
            return
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.release()

    def release(self):
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def lock_staging_folder(folder):
    """Lock a staging folder for the life of this run (see `sweep_abandoned`)."""
    return StagingLock(os.path.join(folder, STAGING_LOCK_NAME))


def _is_abandoned(lock_path, now):
    """True when nobody holds `lock_path` and it is old enough: its run has ended."""
    try:
        if now - os.stat(lock_path).st_mtime < MIN_AGE_SECONDS:
            return False
        fd = os.open(lock_path, os.O_RDWR)
    except OSError:  # gone meanwhile, or not ours to open
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:  # held: the run is alive
        return False
    finally:
        os.close(fd)


def sweep_abandoned(folder, folder_prefix=None, file_pattern=None):
    """Remove staged items in `folder` left by runs that have ended. Returns their names.

    folder_prefix: staging folders (`<prefix>*`, locked through their `.lock` file);
    file_pattern: staged files (a glob, each file locked itself)."""
    if fcntl is None or not os.path.isdir(folder):
        return []
    now = time.time()
    removed = []
    if folder_prefix:
        for path in glob.glob(os.path.join(glob.escape(folder), glob.escape(folder_prefix) + "*")):
            if os.path.isdir(path) and _is_abandoned(os.path.join(path, STAGING_LOCK_NAME), now):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(os.path.basename(path))
    if file_pattern:
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), file_pattern))):  # a file before its .aux.xml
            if os.path.isfile(path) and _is_abandoned(path, now):
                for leftover in (path, path + ".aux.xml"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(leftover)
                removed.append(os.path.basename(path))
    return removed


def report_swept(say, names):
    """Tell the user which leftovers were removed (they may wonder where disk space went).

    say: a one-argument callable (QgsProcessingFeedback.pushInfo, print, a logger)."""
    if names:
        say(f"Removed {len(names)} unfinished item(s) left in the output folder by earlier runs "
            f"that ended before finishing: {', '.join(sorted(names))}")
