"""Run the benchmarks: ``python -m bench [NAME ...] [options]`` from the repository root.

With no name, every benchmark runs; ``python -m bench digest --subscribers 10000`` runs one.
The options go to each benchmark; each ignores those of the others.
"""

import sys

from bench import (
    account_timing,
    campaign_page,
    dashboard,
    digest,
    embeds,
    exports,
    imports,
    statements,
    webhooks,
    worker,
)

BENCHMARKS = {"campaign_page": campaign_page, "embeds": embeds, "dashboard": dashboard,
              "digest": digest,
              "exports": exports, "statements": statements, "webhooks": webhooks,
              "account_timing": account_timing, "worker": worker}


#: Run only when named: hours at their default size today (bench/README.md).
ON_REQUEST = {"import": imports}


def main(argv: list[str]) -> int:
    names = []
    while argv and (argv[0] in BENCHMARKS or argv[0] in ON_REQUEST):
        names.append(argv.pop(0))
    status = 0
    for name in names or BENCHMARKS:
        status = {**BENCHMARKS, **ON_REQUEST}[name].main(argv) or status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
