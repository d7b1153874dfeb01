"""A small HTTP API: /health answers once the schema written by migrate.py is there.

It starts listening after a short warm-up, like a real server, so `up --wait` has something to
wait for; `ready: {http: .../health}` in kstlib.conf.yml is what tells kstlib it is ready.
"""

import argparse
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATE = Path(os.environ.get("STACK_STATE", "stack-state.txt"))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            ok = STATE.exists()
            body = (b"ok\n" if ok else b"no schema\n")
            self.send_response(200 if ok else 503)
        else:
            body = f"hello from the api ({STATE.read_text().strip()})\n".encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"api: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}",
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    print("api: warming up", flush=True)
    time.sleep(1.0)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"api: listening on http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("api: stopped cleanly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
