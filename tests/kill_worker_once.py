"""Dask worker preload for the killed-worker test (never used by CAMEO itself).

The test runs `python -m models.distributed embed` with
`DASK_DISTRIBUTED__WORKER__PRELOAD=["<this file>"]` and `CAMEO_TEST_KILL_WORKER_ONCE=<marker>`:
Dask imports this file in every worker process of the embedded cluster and calls
`dask_setup`. The first task (in any worker) that finds the marker absent creates it with
its pid and kills its own worker with SIGKILL after writing its tile into the temporary
file, i.e. mid-write, before the rename.
"""

import os
import signal

KILL_ONCE_ENV = "CAMEO_TEST_KILL_WORKER_ONCE"


def preload_env(marker):
    """The environment that makes the embedded cluster's workers load this file."""
    return {"DASK_DISTRIBUTED__WORKER__PRELOAD": f'["{os.path.abspath(__file__)}"]', KILL_ONCE_ENV: str(marker)}


def _kill_once(_tmp_path):
    try:
        handle = os.open(os.environ[KILL_ONCE_ENV], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(handle, str(os.getpid()).encode())
    os.close(handle)
    os.kill(os.getpid(), signal.SIGKILL)


def dask_setup(worker):  # noqa: ARG001 - Dask's preload signature
    from models.distributed import store

    save_tile = store.save_tile

    def save_tile_then_die_once(tiles_dir, tile, array, before_rename=None):
        return save_tile(tiles_dir, tile, array, before_rename=_kill_once)

    store.save_tile = save_tile_then_die_once
