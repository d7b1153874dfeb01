"""``runner.Runner``: the one place commands run. Real (tiny) ``sh`` processes, a few ms each."""

from __future__ import annotations

import pytest

from kstlib_tasks.errors import BackendError
from kstlib_tasks.runner import Runner


def test_exit_codes_are_results_not_exceptions() -> None:
    result = Runner("sh").run("-c", "echo out; echo err >&2; exit 3", check=False)
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 3)
    with pytest.raises(BackendError, match=r"failed \(3\): err"):
        Runner("sh").run("-c", "echo err >&2; exit 3")


def test_a_command_killed_by_a_signal_is_one_clear_error() -> None:
    """Not sh's SignalException (a traceback for the user): someone killed the client."""
    with pytest.raises(BackendError, match="killed by signal 9"):
        Runner("sh").run("-c", "kill -KILL $$", check=False)


def test_a_command_that_hangs_is_killed_at_its_timeout() -> None:
    with pytest.raises(BackendError, match=r"did not answer within 0\.2s"):
        Runner("sh").run("-c", "sleep 30", timeout=0.2)
