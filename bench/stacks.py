"""Where the CPU went, from collapsed stacks (``py-spy record --format raw``, as ``python -m bench
worker --py-spy FILE`` writes them): ``python -m bench.stacks FILE [--top 40] [--match app/]``.

Prints each function's inclusive share of the samples (a function counted once per stack however
deep it recurses), highest first, for the functions whose location contains ``--match`` (the
app's own code by default; ``--match ''`` for every one).
"""

from __future__ import annotations

import argparse
import collections
import sys


def inclusive(lines) -> tuple[collections.Counter, int]:
    counts: collections.Counter = collections.Counter()
    total = 0
    for line in lines:
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if not stack or not n.isdigit():
            continue
        total += int(n)
        # A frame is "function (file:line)": the line is dropped, so a function is one entry.
        for frame in {f.rpartition(":")[0] + ")" if f.endswith(")") and ":" in f else f
                      for f in stack.split(";")}:
            counts[frame] += int(n)
    return counts, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stacks",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="app/")
    opts = parser.parse_args(argv)
    with open(opts.file) as fh:
        counts, total = inclusive(fh)
    print(f"{total} samples")
    shown = [(frame, n) for frame, n in counts.most_common() if opts.match in frame]
    for frame, n in shown[:opts.top]:
        print(f"{100 * n / total:6.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
