"""Side-by-side benchmark runs against another git revision of CAMEO.

The tree of REV (its code and its bundled models) is extracted with `git archive` into a
temporary folder - no worktree is registered, nothing in the repository changes - and
each engine runs in its own process with that tree first on sys.path. Runs alternate
(REV, this tree; this tree, REV; ...) so that both see the same machine load.
"""

import argparse
import os
import statistics
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def extract_revision(rev, folder):
    """The tree of git revision `rev` in `folder`/tree (returned)."""
    tree = os.path.join(folder, "tree")
    os.makedirs(tree)
    archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", rev], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
    return tree


def alternating(repeats):
    """(run number, "baseline" or "current") in the order the runs are made."""
    for number in range(repeats):
        order = ("baseline", "current") if number % 2 == 0 else ("current", "baseline")
        for label in order:
            yield number, label


def ratio_of_medians(values, higher_is_better=True):
    """({label: median}, current / baseline (or baseline / current for times))."""
    medians = {label: statistics.median(v) for label, v in values.items()}
    ratio = medians["current"] / medians["baseline"]
    return medians, round(ratio if higher_is_better else 1 / ratio, 3)


def load_average():
    return [round(v, 2) for v in os.getloadavg()]


def add_side_by_side_arguments(parser, what="engine", child_inputs=("s2",)):
    """--baseline-rev and --repeats, plus the hidden arguments of the child runs they start."""
    parser.add_argument("--baseline-rev", default=None, help="git revision to compare with, side by side")
    parser.add_argument("--repeats", type=int, default=3, help=f"runs of each {what} with --baseline-rev")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repo", help=argparse.SUPPRESS)
    for name in child_inputs:
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
