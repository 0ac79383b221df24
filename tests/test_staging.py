"""Sweeping the work files of runs that died (models.staging), on real files and flocks."""

import os
import time

from models.staging import STAGING_LOCK_NAME, StagingLock, lock_staging_folder, sweep_abandoned


def _touch(path, age=0.0):
    with open(path, "w") as handle:
        handle.write("x")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def _age(path, age):
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def test_only_old_unlocked_items_are_swept(tmp_path):
    dead_file = _touch(tmp_path / ".s2_stack.tmp-dead.tif", age=3600)
    _touch(tmp_path / ".s2_stack.tmp-dead.tif.aux.xml", age=3600)
    young_file = _touch(tmp_path / ".s2_stack.tmp-young.tif", age=5)  # may be a run that starts now
    live_file = _touch(tmp_path / ".s1_stack.tmp-live.tif")
    live_lock = StagingLock(str(live_file))
    _age(live_file, 3600)
    finished = _touch(tmp_path / "s2_stack.tif", age=3600)

    dead_folder = tmp_path / ".cameo-partial-dead"
    dead_folder.mkdir()
    _touch(dead_folder / STAGING_LOCK_NAME, age=3600)
    _touch(dead_folder / "raw_embedding_2018-06-30.tif", age=3600)
    live_folder = tmp_path / ".cameo-partial-live"
    live_folder.mkdir()
    live_folder_lock = lock_staging_folder(str(live_folder))
    _age(live_folder / STAGING_LOCK_NAME, 3600)
    unlocked_folder = tmp_path / ".cameo-partial-nolock"  # created, not locked yet: never swept
    unlocked_folder.mkdir()
    try:
        removed = sweep_abandoned(str(tmp_path), folder_prefix=".cameo-partial-", file_pattern=".*.tmp-*")
        assert sorted(removed) == [".cameo-partial-dead", ".s2_stack.tmp-dead.tif"]  # with its .aux.xml
        assert sorted(os.listdir(tmp_path)) == [".cameo-partial-live", ".cameo-partial-nolock",
                                                ".s1_stack.tmp-live.tif", ".s2_stack.tmp-young.tif",
                                                "s2_stack.tif"]
        assert os.path.exists(young_file) and os.path.exists(finished) and not os.path.exists(dead_file)
    finally:
        live_lock.release()
        live_folder_lock.release()
    # once their runs end (locks released), the same items are abandoned
    assert sorted(sweep_abandoned(str(tmp_path), folder_prefix=".cameo-partial-", file_pattern=".*.tmp-*")) == [
        ".cameo-partial-live", ".s1_stack.tmp-live.tif"]
