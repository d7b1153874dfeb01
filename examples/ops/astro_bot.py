"""A tiny long-running bot for the examples: one line every few seconds, clean exit on signals.

It stands in for a real worker: it prints a cyclic counter so `logs` has something to show, and
it handles SIGINT (tmux `stop` sends C-c) and SIGTERM (container `stop`) by finishing its current
line and saying goodbye, which is what a graceful stop must allow.

Settings come from the environment, as they would in kstlib.conf.yml's `env:`:
BOT_MODE (label only), BOT_INTERVAL (seconds between lines, default 2), BOT_CYCLE (counter
period, default 10).
"""

from __future__ import annotations

import os
import signal
import sys
import time

running = True


def _request_stop(signum: int, _frame: object) -> None:
    global running
    running = False
    print(f"astro-bot: got {signal.Signals(signum).name}, shutting down", flush=True)


def main() -> int:
    mode = os.environ.get("BOT_MODE", "dev")
    interval = float(os.environ.get("BOT_INTERVAL", "2"))
    cycle = int(os.environ.get("BOT_CYCLE", "10"))
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    print(f"astro-bot: started (mode={mode}, pid={os.getpid()})", flush=True)
    tick = 0
    while running:
        print(f"astro-bot [{mode}] tick {tick % cycle + 1}/{cycle}", flush=True)
        tick += 1
        deadline = time.monotonic() + interval
        while running and time.monotonic() < deadline:
            time.sleep(min(0.1, interval))
    print("astro-bot: stopped cleanly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
