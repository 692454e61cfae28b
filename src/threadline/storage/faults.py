"""Named crash points for fault-injection tests.

Set ``THREADLINE_CRASH_AT`` to a point's name (or several, comma-separated) and the process
exits at once with status 137 (as if SIGKILLed) when it reaches that point: no cleanup, no
``finally`` blocks, no flushing. Points:

- ``upload:before_meta``: a block's data and bloom are uploaded (or staged), ``meta.json`` not yet;
- ``compaction:before_meta``: the same, for a block written by the compactor;
- ``compaction:after_write``: the compacted block is complete, no input is marked compacted yet;
- ``compaction:after_mark``: the first input is marked compacted, the others not yet.
"""

from __future__ import annotations

import os
import sys

ENV = "THREADLINE_CRASH_AT"
EXIT_STATUS = 137


def crash_point(name: str) -> None:
    """Exit immediately if ``THREADLINE_CRASH_AT`` names this point."""
    wanted = os.environ.get(ENV)
    if wanted and name in wanted.split(","):
        sys.stderr.write(f"threadline: crash point {name} reached, exiting\n")
        sys.stderr.flush()
        os._exit(EXIT_STATUS)
