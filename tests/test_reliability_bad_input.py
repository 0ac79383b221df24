"""Reliability: every bad input gives one clear message, no traceback, nothing written.

Each case of `reliability_cases.CASES` runs through Processing in a real QGIS (as in
the toolbox, a model or a batch run). The user must see exactly one line, the CAMEO
message naming the problem and the fix; the log holds no traceback; the output folder
is as it was (or still absent); every input file has the same sha256 as before.
The inputs that must work (odd paths, unsorted files, already scaled reflectance,
short series) are run too. A few cases also go through the real qgis_process.
"""

import json
import os
import re

import numpy as np
import processing
import pytest
import rasterio
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from reliability_cases import CASES, QGIS_REFUSAL
from reliability_helpers import (
    DATES,
    finished_looking,
    listing,
    s2_series,
    tiny_stacks,
    tree_digest,
    write_s1,
    write_s2,
)

TABLE_FILE = os.environ.get("CAMEO_RELIABILITY_TABLE")  # set to collect the messages for tests/README.md


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps everything the algorithm tells the user (log and errors)."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def pushInfo(self, info):  # noqa: N802 - QGIS API
        self.lines.append(info)
        super().pushInfo(info)

    def reportError(self, error, fatalError=False):  # noqa: N802
        self.lines.append(error)
        super().reportError(error, fatalError)

    def text(self):
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
def env(tiny_models_dir, tmp_path_factory):
    """Shared good inputs: tiny S2 + S1 stacks and their embeddings (tiny models)."""
    from models.embedding.job import embed_stacks

    root = tmp_path_factory.mktemp("reliability-env")
    stacks = tiny_stacks(str(root / "stacks"))
    run = embed_stacks(stacks["S2_STACK"], str(root / "embeddings"), s1_path=stacks["S1_STACK"], tile_size=32,
                       threads=1, models_dir=str(tiny_models_dir))
    return {"stacks": stacks, "models": str(tiny_models_dir), "embeddings": run.index_path, "root": str(root)}


def _run_expecting_error(algorithm, params):
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException) as raised:
        processing.run(algorithm, params, feedback=feedback)
    return str(raised.value), feedback.text()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_clear_message_and_writes_nothing(case, qgis_app, env, tmp_path):
    folder = tmp_path / "case"
    folder.mkdir()
    algorithm, params = case.build(str(folder), env)
    assert algorithm == case.algorithm
    out = os.path.join(str(folder), "out")
    before_out = listing(out)
    before_inputs = tree_digest(*[p for p in (folder / n for n in os.listdir(folder)) if p.name != "out"],
                                os.path.dirname(env["stacks"]["S2_STACK"]), env["models"],
                                os.path.dirname(env["embeddings"]))

    message, log = _run_expecting_error(algorithm, params)

    if TABLE_FILE:
        with open(TABLE_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"id": case.id, "algorithm": case.algorithm, "what": case.what,
                                     "message": message.replace(str(tmp_path), "<tmp>")}) + "\n")
    if case.qgis_may_refuse and re.fullmatch(QGIS_REFUSAL.format(parameter=case.qgis_may_refuse), message):
        pass  # QGIS's own check came first (QGIS 3.44): its wording, naming the parameter
    else:
        assert re.search(case.pattern, message), message
        assert "\n" not in message, "one line"
    assert "Traceback" not in message and "Traceback" not in log
    assert listing(out) == before_out, "nothing written"
    assert tree_digest(*before_inputs) == before_inputs, "inputs unchanged"


def test_at_least_thirty_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 30
    assert len({c.pattern for c in CASES}) >= 30


def test_zero_byte_stack_is_refused_by_qgis_before_the_run(qgis_app, env, tmp_path):
    # QGIS itself checks raster layer parameters: the message names the parameter.
    empty = tmp_path / "s2_stack.tif"
    empty.write_bytes(b"")
    message, log = _run_expecting_error("cameo:embed", {"S2_STACK": str(empty), "MODELS": env["models"],
                                                        "OUTPUT_FOLDER": str(tmp_path / "out")})
    assert "S2_STACK" in message and "Traceback" not in message + log
    assert not (tmp_path / "out").exists()


def test_training_config_with_unknown_keys_is_refused_by_name(tmp_path):
    from models.train.config import load_config

    config = tmp_path / "typo.json"
    config.write_text(json.dumps({"s2": {"widht": 8}}))
    with pytest.raises(KeyError, match=r"Unknown config key 's2\.widht'; known: \[.*'width'"):
        load_config(str(config))


# ----------------------------------------------------------------------------- inputs that must work

def _stack_dates(path):
    with rasterio.open(path) as data:
        return data.tags()["CAMEO_DATES"].split(",")


ODD = "dossier été/sous dossier ü $(touch PWNED); 'quote' `x` & echo"


def test_paths_with_spaces_non_ascii_and_shell_characters_work(qgis_app, env, tmp_path):
    root = tmp_path / ODD
    inputs = s2_series(str(root / "entrées S2"), DATES, size=24)
    s1 = [write_s1(str(root / f"S1 données_{d:%Y%m%d}.tif"), size=12) for d in DATES]
    before = tree_digest(*inputs, *s1)
    stack = processing.run("cameo:preparestack", {"S2": inputs, "S1": s1,
                                                  "OUTPUT_FOLDER": str(root / "pile été")})
    assert _stack_dates(stack["S2_STACK"]) == [d.isoformat() for d in DATES]
    embed = processing.run("cameo:embed", {"S2_STACK": stack["S2_STACK"], "S1_STACK": stack["S1_STACK"],
                                           "MODELS": env["models"], "TILE_SIZE": 32, "THREADS": 1,
                                           "OUTPUT_FOLDER": str(root / "plongements ü")})
    assert embed["EMBEDDINGS"] == str(root / "plongements ü" / "embeddings.vrt")
    rgb = processing.run("cameo:embeddingrgb", {"INPUT": embed["EMBEDDINGS"], "DATE": DATES[2].isoformat(),
                                                "OUTPUT": str(root / "vue rgb é.tif")})
    with rasterio.open(rgb["OUTPUT"]) as data:
        assert data.tags()["CAMEO_DATE"] == DATES[2].isoformat() and data.read().max() == 255
    assert tree_digest(*inputs, *s1) == before
    # Nothing was run by a shell: no file named PWNED appeared anywhere.
    assert not [p for p in tmp_path.rglob("PWNED")] and not os.path.exists("PWNED")


def test_files_given_out_of_date_order_give_sorted_stacks(qgis_app, tmp_path):
    files = s2_series(str(tmp_path / "in"), DATES)
    shuffled = [files[2], files[0], files[3], files[1]]
    result = processing.run("cameo:preparestack", {"S2": shuffled, "OUTPUT_FOLDER": str(tmp_path / "out")})
    assert _stack_dates(result["S2_STACK"]) == [d.isoformat() for d in DATES]


def test_already_scaled_float_reflectance_is_kept_as_is(qgis_app, tmp_path):
    path = write_s2(str(tmp_path / "S2_20180601.tif"), values=[0.05 + 0.01 * i for i in range(10)],
                    dtype="float32", nodata=None)
    result = processing.run("cameo:preparestack", {"S2": [path], "OUTPUT_FOLDER": str(tmp_path / "out")})
    with rasterio.open(result["S2_STACK"]) as data:
        values = data.read()[:, 0, 0]
    assert np.allclose(values, [0.05 + 0.01 * i for i in range(10)], atol=1e-6)


def test_fewer_dates_than_a_window_run_and_say_what_happens(qgis_app, env, tmp_path):
    stacks = tiny_stacks(str(tmp_path / "short"), n_dates=2)
    feedback = RecordingFeedback()
    result = processing.run("cameo:embed", {"S2_STACK": stacks["S2_STACK"], "S1_STACK": stacks["S1_STACK"],
                                            "MODELS": env["models"], "TILE_SIZE": 32,
                                            "OUTPUT_FOLDER": str(tmp_path / "out")}, feedback=feedback)
    assert result["DATES"] == ",".join(d.isoformat() for d in stacks["dates"])
    assert re.search(r"the stack has 2 date\(s\), fewer than the 11 of a model window; the missing 9 frame\(s\) "
                     r"of every window are padding that the models ignore", feedback.text())
    with rasterio.open(result["EMBEDDINGS"]) as data:
        assert np.isfinite(data.read()).mean() > 0.9


# ----------------------------------------------------------------------------- the real command line

QGIS_PROCESS_CASES = ["prep-not-reflectance", "embed-sha256-mismatch"]  # each start of QGIS takes seconds


@pytest.mark.parametrize("case_id", QGIS_PROCESS_CASES)
def test_qgis_process_prints_the_message_without_traceback(case_id, qgis_process, env, tmp_path):
    case = next(c for c in CASES if c.id == case_id)
    folder = tmp_path / "case"
    folder.mkdir()
    algorithm, params = case.build(str(folder), env)
    args = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            args.append(f"{key}={item}")
    done = qgis_process("run", algorithm, "--", *args, check=False)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert re.search(case.pattern, output), output
    assert "Traceback" not in output
    assert finished_looking(folder / "out") == [] or algorithm == "cameo:modelinfo"


def test_fluxnet_file_without_gpp_is_refused_in_one_line(data_dir, tmp_path):
    """python -m models.gpp evaluate with a FLUXNET2015 daily file whose GPP column was dropped."""
    import csv
    import subprocess
    import sys

    from reliability_helpers import REPO

    source = data_dir / "towers" / "FLX_BE-Lcr_FLUXNET2015_FULLSET_DD_2019-2020_beta-3.csv"
    with open(source, newline="") as handle:
        rows = list(csv.reader(handle))[:40]
    keep = [i for i, name in enumerate(rows[0]) if not name.startswith("GPP_")]
    tower = tmp_path / "FLX_BE-Lcr_FLUXNET2015_SUBSET_DD_2019-2020.csv"
    with open(tower, "w", newline="") as handle:
        csv.writer(handle).writerows([[row[i] for i in keep] for row in rows])
    footprint = data_dir / "towers" / "FR-Fon_FontainebleauBarbeau_S2_footprint_raw_2017-2023.csv"
    before = tree_digest(tower)
    done = subprocess.run([sys.executable, "-m", "models.gpp", "evaluate", "--footprint", str(footprint),
                           "--gpp", str(tower), "--latitude", "51.11"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert re.search(r"FLX_BE-Lcr_FLUXNET2015_SUBSET_DD_2019-2020\.csv is a FLUXNET2015 file without the column "
                     r"GPP_NT_VUT_REF .*give the FULLSET file", lines[0]), lines[0]
    assert tree_digest(tower) == before
