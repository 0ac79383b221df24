#!/usr/bin/env python3
"""Build the plugin zip the QGIS plugin repository expects: one top folder `cameo/`.

Only the files git tracks go in, minus what a QGIS user does not need (tests, CI,
training code, benchmarks, developer scripts). Usage: scripts/package.py [--output ZIP]
"""

import argparse
import os
import subprocess
import sys
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_FOLDER = "cameo"
MAX_BYTES = 25 * 1024 * 1024  # the plugin repository's upload limit
# Path prefixes (relative to the repository) that stay out of the plugin. models/train
# (torch) and models/distributed (Dask, which moves tasks with pickle) are command-line
# tools of a checkout, not used inside QGIS.
EXCLUDED_PREFIXES = (
    ".ci/", ".git", "benchmarks/", "docs/", "models/distributed/", "models/train/", "scripts/", "tests/",
    "Makefile", "requirements-dev.txt", "pytest.ini",
)


def plugin_files(repo=REPO):
    listed = subprocess.run(["git", "-C", repo, "ls-files", "-z"], check=True,
                            capture_output=True).stdout.decode().split("\0")
    return sorted(path for path in listed
                  if path and not path.startswith(EXCLUDED_PREFIXES)
                  and "__pycache__" not in path and not path.endswith(".pyc")
                  and os.path.isfile(os.path.join(repo, path)))


def build(output):
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    temporary = output + ".part"
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in plugin_files():
            archive.write(os.path.join(REPO, path), f"{TOP_FOLDER}/{path}")
    size = os.path.getsize(temporary)
    if size > MAX_BYTES:
        os.remove(temporary)
        sys.exit(f"package: {size / 2**20:.1f} MB is over the plugin repository's 25 MB limit")
    os.replace(temporary, output)
    return size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(REPO, "dist", "cameo.zip"))
    args = parser.parse_args()
    size = build(args.output)
    print(f"{args.output}: {size / 2**20:.2f} MB")


if __name__ == "__main__":
    main()
