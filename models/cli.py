"""One exit-status contract for every CAMEO command line (`python -m models.stack`,
`models.gpp`, `models.distributed`, `models.train`).

`run_cli(main, argv, prog)` runs `main(argv)` and turns what it raises into one line on
stderr and an exit status:

| status | when | line |
|---|---|---|
| 0 | done (`main` returned None or 0) | whatever `main` printed |
| 2 | bad input or arguments: any `CameoError` but the two below (argparse exits 2 itself) | `[prog: ]error: ...` |
| 1 | the run failed with usable input (`CameoRunError`) | `[prog: ]error: ...` |
| 130 | cancelled (`CameoCancelled`, Ctrl-C, SIGTERM where `main` maps it) | `[prog: ]cancelled: ...` |

Any other exception is a bug: it propagates with its traceback (Python's exit status 1).
"""

import sys

from .errors import CameoCancelled, CameoError, CameoRunError

EXIT_DONE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


def one_line(text):
    """`text` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(str(text).split())


def run_cli(main, argv=None, prog=None):
    """`main(argv)`'s exit status under the contract above; messages start with `prog: ` when given."""
    prefix = f"{prog}: " if prog else ""
    try:
        status = main(argv)
    except CameoCancelled as error:
        print(f"{prefix}cancelled: {one_line(error)}", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print(f"{prefix}cancelled: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except CameoError as error:
        print(f"{prefix}error: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILED if isinstance(error, CameoRunError) else EXIT_BAD_INPUT
    return status or EXIT_DONE
