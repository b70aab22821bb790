"""A stand-in for supercronic in the init's tests (tests/commands/test_container_start.py).

`-test FILE`: refuses a job line whose first five fields are not cron fields, as supercronic
v0.2.48 does (exit 1, its logfmt lines on stderr, the refusal at level fatal). Otherwise it
records how it was started, as JSON in $FAKE_SUPERCRONIC_RECORD (its arguments, the
crontab's text, and whether the file $FAKE_SUPERCRONIC_MARKER existed then), and exits 0.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

FIELD = re.compile(r"[0-9*/,-]+")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*=")


def refused(text: str) -> str | None:
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#") or VARIABLE.match(line):
            continue
        fields = line.split()
        if len(fields) < 6 or not all(FIELD.fullmatch(f) for f in fields[:5]):
            return f"bad crontab line: '{line}' (use -debug for details)"
    return None


def main(args: list[str]) -> int:
    if args[:1] == ["-test"]:
        problem = refused(Path(args[1]).read_text(encoding="utf-8"))
        said = "crontab is valid" if problem is None else problem.replace('"', '\\"')
        level = "info" if problem is None else "fatal"
        sys.stderr.write(
            'time="2026-01-01T00:00:00Z" level=warning msg="process reaping disabled, not pid 1"\n'
            f'time="2026-01-01T00:00:00Z" level=info msg="read crontab: {args[1]}"\n'
            f'time="2026-01-01T00:00:00Z" level={level} msg="{said}"\n'
        )
        return 0 if problem is None else 1
    marker = os.environ.get("FAKE_SUPERCRONIC_MARKER", "")
    record = {
        "argv": args,
        "crontab": Path(args[-1]).read_text(encoding="utf-8"),
        "marker": bool(marker) and Path(marker).exists(),
    }
    Path(os.environ["FAKE_SUPERCRONIC_RECORD"]).write_text(json.dumps(record), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
