"""cameo preparestack bad inputs: one clear CameoInputError each, and nothing written.

The same cases through the command line: a one-line message and exit status 2.
"""

import os
import subprocess
import sys

import pytest

from models.errors import CameoInputError
from models.stack import prepare_stack
from test_stack_helpers import chip_files, write_s1_tif, write_s2_tif

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cases(data_dir, tmp):
    s2, s1 = chip_files(data_dir)
    other_s2, _ = chip_files(data_dir, "belgium_0000280849BAC91C")
    monthly = str(data_dir / "monthly" / "worldcereal_preprocessed_inputs.nc")
    text = tmp / "notes.txt"
    text.write_text("not a raster\n")
    undated = write_s2_tif(tmp / "scene.tif")
    dup_a = write_s2_tif(tmp / "a_20180804.tif")
    dup_b = write_s2_tif(tmp / "b_2018-08-04.tif", bands=("B02", "B03", "B04", "B08", "SCL"))
    cloudy = write_s2_tif(tmp / "S2_20180810.tif", scl=9)
    clear = write_s2_tif(tmp / "S2_20180811.tif", scl=4)
    old_s1 = write_s1_tif(tmp / "S1_20150101.tif")
    ten_a = next(p for p in s2 if "_10m_" in p)
    twenty_b = next(p for p in other_s2 if "_20m_" in p)
    return {
        # name: (prepare_stack kwargs, regex the message must match)
        "missing band": (dict(s2=[monthly]),
                         r"band B8A is missing.*Bands found: .*B02, B03, B04, B05, B06, B07, B08, B11, B12"),
        "no overlap": (dict(s2=[ten_a, twenty_b]),
                       r"Sentinel-2 inputs do not overlap: .*S2_L2A_10m_00002806639B424A.*S2_L2A_20m_0000280849BAC91C"),
        "s1 too far in time": (dict(s2=[clear], s1=[old_s1], max_s1_gap_days=6),
                               r"No Sentinel-1 acquisition lies within MAX_S1_GAP_DAYS=6 days.*2015-01-01"),
        "s1 elsewhere": (dict(s2=s2, s1=[old_s1]), r"Sentinel-1 input\(s\) .*S1_20150101.tif.* do not overlap"),
        "unparseable date": (dict(s2=[undated]), r"Cannot tell the acquisition date of '.*scene\.tif'.*YYYYMMDD"),
        "same day, other bands": (dict(s2=[dup_a, dup_b]),
                                  r"Sentinel-2 date 2018-08-04 has 2 acquisitions with different band sets "
                                  r"\('.*a_20180804\.tif' has B02, .*; '.*b_2018-08-04\.tif' has B02, B03, B04, B08, "
                                  r"SCL\)\. Same-day acquisitions are merged only when"),
        "not a raster": (dict(s2=[str(text)]), r"'.*notes\.txt' is not a raster that GDAL can read"),
        "missing file": (dict(s2=[str(tmp / "nope.tif")]), r"does not exist"),
        "empty extent": (dict(s2=s2, extent=(501500, 5629300, 501500, 5629500)), r"extent .* is empty"),
        "extent elsewhere": (dict(s2=s2, extent=(4.0, 50.0, 4.1, 50.1), extent_crs="EPSG:4326"),
                             r"extent .* does not overlap the Sentinel-2 data"),
        "all dates cloudy": (dict(s2=[cloudy]), r"All 1 Sentinel-2 dates are too cloudy.*Lower MIN_VALID_FRACTION"),
        "geographic target crs": (dict(s2=s2, crs="EPSG:4326"), r"geographic.*EPSG:32631"),
    }


CASES = ["missing band", "no overlap", "s1 too far in time", "s1 elsewhere", "unparseable date", "same day, other bands",
         "not a raster", "missing file", "empty extent", "extent elsewhere", "all dates cloudy",
         "geographic target crs"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_clear_error_and_writes_nothing(case, data_dir, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    kwargs, pattern = _cases(data_dir, inputs)[case]
    kwargs = dict(kwargs)
    new_folder = tmp_path / "new" / "out"
    with pytest.raises(CameoInputError, match=pattern) as raised:
        prepare_stack(kwargs.pop("s2"), str(new_folder), **kwargs)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "new" / "out").exists()
    # An existing folder stays as it was.
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("x")
    kwargs2, _ = _cases(data_dir, inputs)[case]
    kwargs2 = dict(kwargs2)
    with pytest.raises(CameoInputError):
        prepare_stack(kwargs2.pop("s2"), str(existing), **kwargs2)
    assert sorted(os.listdir(existing)) == ["keep.txt"]


def test_failure_while_writing_removes_the_partial_outputs(data_dir, tmp_path):
    # A cancel in the middle of pass 2 (after the writers exist) leaves no file behind.
    from models.errors import CameoCancelled

    class CancelLate:
        calls = 0

        def setProgress(self, percent):  # noqa: N802
            pass

        def pushInfo(self, message):  # noqa: N802
            pass

        def isCanceled(self):  # noqa: N802
            CancelLate.calls += 1
            return CancelLate.calls > 130  # pass 1 has 118 checks on the chip

    s2, s1 = chip_files(data_dir)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CameoCancelled):
        prepare_stack(s2, str(out), s1=s1, progress=CancelLate())
    assert os.listdir(out) == []


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "models.stack", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_cli_bad_input_exits_2_with_one_line(data_dir, tmp_path):
    monthly = str(data_dir / "monthly" / "worldcereal_preprocessed_inputs.nc")
    done = _cli("--s2", monthly, "--output-folder", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Sentinel-2 band B8A is missing")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_cli_help_documents_the_parameters():
    done = _cli("--help")
    assert done.returncode == 0
    for option in ("--s2", "--s2-bands", "--s2-mask", "--s1", "--extent", "--crs", "--min-valid-fraction",
                   "--max-s1-gap-days", "--output-folder", "exit status"):
        assert option in done.stdout


def test_cli_prepares_a_crop_of_the_chip(data_dir, tmp_path):
    s2, s1 = chip_files(data_dir)
    done = _cli("--s2", *s2, "--s1", *s1, "--extent", "501500,501700,5629300,5629500 [EPSG:32631]",
                "--min-valid-fraction", "0.95", "--output-folder", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    import json
    from models.stack import read_stack_info
    outputs = json.loads(done.stdout)
    info = read_stack_info(outputs["S2_STACK"])
    assert (info.width, info.height) == (20, 20)
    assert read_stack_info(outputs["S1_STACK"]).dates == info.dates
