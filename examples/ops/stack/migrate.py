"""A stand-in for a migration: writes the schema version the API reads, then exits 0.

`depends_on: {migrate: completed}` makes the API wait until this has ended with exit code 0; a
failure (try MIGRATE_FAIL=1) stops `up` before the API is started and reports why.
"""

import os
import sys
import time
from pathlib import Path

if os.environ.get("MIGRATE_FAIL"):
    print("migrate: refusing (MIGRATE_FAIL is set)", flush=True)
    sys.exit(3)
print("migrate: applying 3 steps", flush=True)
for step in range(1, 4):
    time.sleep(0.2)
    print(f"migrate: step {step}/3 done", flush=True)
Path(os.environ.get("STACK_STATE", "stack-state.txt")).write_text("schema=3\n")
print("migrate: done", flush=True)
