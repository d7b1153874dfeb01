"""The swarm backend on a real private two-node swarm: a manager, a worker (label
``role=worker``) that has no image of its own and pulls it, pinned by digest, from the lab's
registry. A session constrained to the worker runs there; killing the worker's engine shows
each session's tasks rescheduled or reported in one clear status.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from kstlib_tasks.backends.swarm.backend import SwarmBackend
from kstlib_tasks.errors import BackendError
from kstlib_tasks.models import State
from tests import swarm_lab
from tests.helpers import retry_until
from tests.integration._swarm import launch, remove_services, require_lab, spec, wait_state
from tests.swarm_lab import Swarm

pytestmark = [pytest.mark.swarm2]

SAY = ("sh", "-c", "echo hello; exec sleep 300")  # tests build specs: no validator here


@pytest.fixture(scope="module")
def swarm() -> Iterator[Swarm]:
    require_lab(registry=True)
    swarm_lab.cleanup_all()
    with swarm_lab.two_node_swarm(dispatcher_heartbeat="1s") as lab:
        yield lab
    assert swarm_lab.leftovers(lab.prefix) == []


@pytest.fixture
def backend(swarm: Swarm) -> Iterator[SwarmBackend]:
    yield SwarmBackend(swarm.docker_host)
    remove_services(swarm)


def test_a_session_constrained_to_the_worker_runs_there(swarm: Swarm, backend: SwarmBackend,
                                                        unique_name: Any) -> None:
    assert swarm.worker is not None
    worker = swarm.worker.hostname
    name = unique_name("pinned")
    backend.start(launch(spec(name, *SAY, image=swarm.image,
                              constraints=("node.labels.role==worker",))))
    running = wait_state(backend, name, State.RUNNING, timeout=60,
                         check=lambda s: s.details["replicas"] == "1/1")
    assert running.details["nodes"] == worker
    assert swarm.worker.docker("ps", "-q").stdout.strip()
    # its output is read through the manager
    retry_until(lambda: backend.logs(name) == ["hello"], timeout=30)
    # an exec probe cannot reach a task on another node: a clear error, not a long timeout
    with pytest.raises(BackendError, match=f"its tasks run on {worker}, which kstlib cannot "
                                           "reach"):
        backend.run_probe(name, ["true"], env={}, cwd=None, timeout=5)
    stopped = backend.stop(name, timeout=10)
    assert stopped.state is State.EXITED
    assert backend.logs(name) == ["hello"]


def test_killing_the_worker_reschedules_or_reports_each_session(
        swarm: Swarm, backend: SwarmBackend, unique_name: Any) -> None:
    """Runs last in this module: the worker stays down."""
    assert swarm.worker is not None
    worker, manager = swarm.worker.hostname, swarm.manager.hostname
    pinned, waiting, spread = (unique_name("lost"), unique_name("waiting"),
                               unique_name("spread"))
    on_worker = ("node.labels.role==worker",)
    backend.start(launch(spec(pinned, *SAY, image=swarm.image, constraints=on_worker)))
    backend.start(launch(spec(waiting, *SAY, image=swarm.image, constraints=on_worker,
                              restart="always", max_restarts=0)))
    backend.start(launch(spec(spread, *SAY, image=swarm.image, replicas=2, restart="always",
                              max_restarts=0)))
    for name in (pinned, waiting):
        wait_state(backend, name, State.RUNNING, timeout=60,
                   check=lambda s: s.details["nodes"] == worker)
    wait_state(backend, spread, State.RUNNING, timeout=60,
               check=lambda s: s.details["replicas"] == "2/2")

    began = time.monotonic()
    swarm.kill_worker()
    retry_until(lambda: swarm.node_states().get(worker) == "Down", timeout=45, interval=0.2)
    # restart: no, and only the worker may run it: one clear status, the task is lost
    lost = wait_state(backend, pinned, State.EXITED, timeout=45)
    assert lost.note == f"1 task lost: node {worker} is down" and lost.exit_code is None
    # a restart policy but nowhere to go: still wanted, the note says why nothing runs
    stuck = wait_state(backend, waiting, State.RUNNING, timeout=45,
                       check=lambda s: "no suitable node" in (s.note or ""))
    assert stuck.details["replicas"] == "0/1"
    # free to move: rescheduled on the manager
    moved = wait_state(backend, spread, State.RUNNING, timeout=60,
                       check=lambda s: s.details["replicas"] == "2/2"
                       and s.details["nodes"] == manager)
    assert moved.restarts is not None and moved.restarts >= 1
    print(f"\n[swarm2] worker killed -> lost/rescheduled seen after "
          f"{time.monotonic() - began:.1f} s")

    # the output the manager's tasks kept is still shown (the worker's part is missing)
    assert "hello" in backend.logs(spread)

    listed = {s.name: s for s in backend.list()}
    assert listed[pinned].state is State.EXITED and listed[spread].state is State.RUNNING

    # stopping a session whose task is on the dead node does not wait for it
    began = time.monotonic()
    stopped = backend.stop(pinned)
    assert time.monotonic() - began < 10
    assert stopped.note and f"node {worker} is down" in stopped.note
    for name in (waiting, spread):
        backend.stop(name, timeout=5)
    assert backend.list() == []
