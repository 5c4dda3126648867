"""Times HTTP requests from a process of its own: ``python -m tests.support.http_timer``.

A test that measures how long the app takes to answer runs its server in a thread; a client in
the same process would share the server's interpreter lock, and wait on whatever the server
does after sending the answer (the work ``app.jobs.after_response`` defers). An attacker's
client is another machine; this is at least another process. It reads one request per line of
standard input, as JSON (``method``, ``port``, ``path``, ``headers``, ``body``), sends it to
127.0.0.1 and writes the status, the seconds from sending it to the answer's last byte, and the
start of the body, as one line of JSON.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time


def main() -> None:
    # Ahead of the server's threads for a core: on a busy machine the client would otherwise
    # wait its turn behind whatever the server does once it has answered (an attacker's client
    # has a machine of its own). Lowering niceness needs root (as CI runs); else it stays as is.
    try:
        os.nice(-10)
    except OSError:
        pass
    for line in sys.stdin:
        asked = json.loads(line)
        connection = http.client.HTTPConnection("127.0.0.1", asked["port"], timeout=60)
        try:
            started = time.perf_counter()
            connection.request(asked["method"], asked["path"], body=asked.get("body"),
                               headers=asked.get("headers", {}))
            response = connection.getresponse()
            body = response.read()
            seconds = time.perf_counter() - started
        finally:
            connection.close()
        print(json.dumps({"status": response.status, "seconds": seconds,
                          "body": body[:2000].decode(errors="replace")}), flush=True)


if __name__ == "__main__":
    main()
