#!/usr/bin/env python3
"""Lists functions longer than a limit (default 80 lines), except those
whose doc comment says why they are longer (mentions "80 lines").

A function runs from its `fn` line to the first later line that is a lone
closing brace at the same indentation (rustfmt's layout). Good enough for
a review aid; it is not a Rust parser.

    python3 scripts/long-functions.py [--max N] [DIR ...]
"""
import re
import sys
from pathlib import Path

FN = re.compile(r"^(\s*)(pub(\([a-z]+\))?\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")


def long_functions(path, limit):
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for start, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        above = " ".join(lines[max(0, start - 4):start])
        if "80 lines" in above:
            continue  # its doc comment says why it is longer
        close = m.group(1) + "}"
        for end in range(start + 1, len(lines)):
            if lines[end].rstrip() == close:
                length = end - start + 1
                if length > limit:
                    yield m.group(7), start + 1, length
                break


def main():
    args = sys.argv[1:]
    limit = 80
    if args[:1] == ["--max"]:
        limit = int(args[1])
        args = args[2:]
    roots = args or ["src", "tests", "test-support"]
    found = 0
    for root in roots:
        for path in sorted(Path(root).rglob("*.rs")):
            for name, line, length in long_functions(path, limit):
                print(f"{path}:{line}: fn {name} is {length} lines")
                found += 1
    print(f"{found} function(s) over {limit} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
