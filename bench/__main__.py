"""Run every benchmark: ``python -m bench [options]`` from the repository root."""

import sys

from bench import campaign_page

BENCHMARKS = [campaign_page]


def main(argv: list[str]) -> int:
    status = 0
    for benchmark in BENCHMARKS:
        status = benchmark.main(argv) or status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
