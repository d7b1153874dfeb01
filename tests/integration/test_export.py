"""``kstlib ops export`` on the real machine: the Kubernetes output passes kubernetes-validate
(1.32, strict) and runs with ``podman kube play``; the Compose output passes
``docker-compose config`` and ``docker-compose up -d`` brings the stack up on docker, in order
(a tcp healthcheck answered by python3, a completion step, an http healthcheck answered by
busybox's nc, an exec healthcheck), each session's own output checked, then ``down``.

Every name is unique to the run (sessions, Compose project, the named volume) and everything
created is removed, also when a test fails. The images are the local test images: nothing is
pulled (``imagePullPolicy: IfNotPresent``, and the images exist).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import PREFIX, _unavailable
from tests.helpers import (
    BUSYBOX_IMAGE,
    KSTLIB,
    PYTHON_IMAGE,
    VENV_BIN,
    Done,
    retry_until,
    run_command,
    runtime_problem,
)

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")

K8S_VERSION = "1.32.0"
KUBERNETES_VALIDATE = str(VENV_BIN / "kubernetes-validate")
DOCKER = "/usr/bin/docker"  # Debian's docker.io client (see pitfalls: /usr/local/bin is 28)

TCP_SERVER = """\
import socket, sys
server = socket.create_server(("0.0.0.0", int(sys.argv[1])))
print("db listening", flush=True)
while True:
    server.accept()[0].close()
"""
WORKER = """\
import os, sys, time
open("/tmp/ok", "w").close()
with open("/app/message.txt") as f:
    message = f.read().strip()
print("worker started:", os.environ["GREETING"], sys.argv[1], message, flush=True)
while True:
    time.sleep(1)
"""
# /usr/bin/python3, not python3: the test Python image has no PATH in its config, which
# podman run makes up for and podman 4.3's kube play does not.
CONFIG = """\
ops:
  sessions:
    {db}:
      backend: container
      image: {python}
      command: /usr/bin/python3 -u /app/tcp_server.py 5000
      volumes: ["./app:/app:ro"]
      ready: {{tcp: 5000, timeout: 60}}
      restart: always
    {migrate}:
      backend: container
      image: {busybox}
      command: echo migrated
      depends_on: {{{db}: ready}}
    {api}:
      backend: container
      image: {busybox}
      command: httpd -f -v -p 8080 -h /app/www
      volumes: ["./app:/app:ro", "{volume}:/data"]
      ready: {{http: "http://127.0.0.1:8080/index.html", timeout: 60}}
      depends_on: {{{migrate}: completed}}
      restart: always
    {worker}:
      backend: container
      image: {python}
      command: /usr/bin/python3 -u /app/worker.py ${{WHO:-stack}}
      env: {{GREETING: hello}}
      volumes: ["./app:/app:ro"]
      ready: {{exec: "test -e /tmp/ok", timeout: 60}}
      depends_on: {{{api}: ready, {dev}: started}}
      restart: always
    {dev}:
      command: sleep 100
"""


@dataclass
class Stack:
    root: Path
    names: dict[str, str]

    def kstlib(self, *args: str) -> Done:
        return run_command([KSTLIB, *args], self.root)

    def export(self, fmt: str, output: str) -> Done:
        done = self.kstlib("ops", "export", "--format", fmt, "-o", output).ok()
        assert done.out == ""
        assert (f"note: session '{self.names['dev']}' (tmux) is not exported: only container "
                "sessions run on Kubernetes/Compose") in done.err.splitlines()
        assert (self.root / output).stat().st_mode & 0o777 == 0o644
        return done


@pytest.fixture
def stack(tmp_path: Path, unique_name: Callable[[str], str]) -> Stack:
    names = {key: unique_name(key) for key in ("db", "migrate", "api", "worker", "dev")}
    app = tmp_path / "app"
    (app / "www").mkdir(parents=True)
    (app / "www" / "index.html").write_text("hello\n")
    (app / "tcp_server.py").write_text(TCP_SERVER)
    (app / "worker.py").write_text(WORKER)
    (app / "message.txt").write_text("from the host\n")
    (tmp_path / "kstlib.conf.yml").write_text(CONFIG.format(
        python=PYTHON_IMAGE, busybox=BUSYBOX_IMAGE, volume=f"{PREFIX}-data", **names))
    return Stack(tmp_path, names)


def _needs_runtime(runtime: str) -> None:
    problem = runtime_problem(runtime)
    if problem:
        _unavailable(problem)


def _run(argv: list[str], cwd: Path, timeout: float = 180) -> Done:
    return run_command(argv, cwd, timeout=timeout)


# =========================================================================== Kubernetes


def test_kubernetes_output_passes_kubernetes_validate(stack: Stack) -> None:
    stack.export("kubernetes", "k8s.yml")
    done = _run([KUBERNETES_VALIDATE, "-k", K8S_VERSION, "--strict", "k8s.yml"], stack.root)
    assert done.code == 0, done.out + done.err
    passed = [line for line in (done.out + done.err).splitlines() if " passed " in line]
    n = stack.names
    assert [line.split("resource ")[1].split(" ")[0] for line in passed] == [
        f"deployment/{n['db']}", f"job/{n['migrate']}", f"deployment/{n['api']}",
        f"deployment/{n['worker']}"]


def _pods(label: str) -> list[str]:
    done = subprocess.run(["podman", "pod", "ps", "--filter", f"label={label}", "--format",
                           "{{.Name}}"], capture_output=True, text=True, timeout=60)
    return done.stdout.split()


def _podman_logs(session: str) -> str:
    listing = subprocess.run(["podman", "ps", "-a", "--filter",
                              f"label=app.kubernetes.io/name={session}", "--format",
                              "{{.Names}}"], capture_output=True, text=True, timeout=60)
    names = listing.stdout.split()
    if len(names) != 1:
        return ""
    done = subprocess.run(["podman", "logs", names[0]], capture_output=True, text=True,
                          timeout=60)
    return done.stdout + done.stderr


@pytest.fixture
def kube_file(stack: Stack) -> Iterator[Path]:
    _needs_runtime("podman")
    path = stack.root / "k8s.yml"
    yield path
    if path.exists():
        subprocess.run(["podman", "kube", "down", str(path)], capture_output=True, timeout=180)
    for session in stack.names.values():  # a play that failed half-way
        for pod in _pods(f"app.kubernetes.io/name={session}"):
            subprocess.run(["podman", "pod", "rm", "-f", pod], capture_output=True, timeout=120)


@pytest.mark.podman
def test_kubernetes_output_runs_with_podman_kube_play(stack: Stack, kube_file: Path) -> None:
    stack.export("kubernetes", kube_file.name)
    n = stack.names
    played = _run(["podman", "kube", "play", kube_file.name], stack.root)
    assert played.code == 0, played.err
    # podman 4.3 plays Deployments (and skips the Job: no Job support before podman 5)
    for session in (n["db"], n["api"], n["worker"]):
        assert _pods(f"app.kubernetes.io/name={session}") == [f"{session}-pod-0"]
    retry_until(lambda: "db listening" in _podman_logs(n["db"]), timeout=60)
    # the env, and a file of the config's folder through the hostPath volume
    retry_until(lambda: "worker started: hello stack from the host" in _podman_logs(n["worker"]),
                timeout=60)
    down = _run(["podman", "kube", "down", kube_file.name], stack.root)
    assert down.code == 0, down.err
    for session in n.values():
        assert _pods(f"app.kubernetes.io/name={session}") == []


# =========================================================================== healthchecks

# Servers for the healthcheck scripts: busybox's nc and httpd; a socket HTTP server for the
# Python image (python3-minimal has no http.server).
BUSYBOX_SERVERS = """\
nc -ll -p 5000 -e sleep 60 &
mkdir -p /tmp/www && echo hi > /tmp/www/index.html && httpd -p 8081 -h /tmp/www
"""
PYTHON_SERVER = """\
import socket, threading
def tcp():
    server = socket.create_server(("0.0.0.0", 5000))
    while True:
        server.accept()
def http():
    server = socket.create_server(("0.0.0.0", 8081))
    while True:
        conn, _ = server.accept()
        path = conn.makefile("rb").readline().split()[1]
        status = b"200 OK" if path == b"/index.html" else b"404 Not Found"
        conn.sendall(b"HTTP/1.0 " + status + b"\\r\\n\\r\\n")
        conn.close()
threading.Thread(target=tcp, daemon=True).start()
http()
"""
# Each script is run until it passes (the servers are starting) or once (when it must fail).
RUNNER = """\
n=0
while read -r want && read -r script; do
    n=$((n + 1)); tries=200
    while :; do
        sh -c "$script"; rc=$?
        if [ "$want" = pass ] && [ "$rc" -ne 0 ] && [ "$tries" -gt 0 ]; then
            tries=$((tries - 1)); usleep 50000 2>/dev/null || sleep 0.05; continue
        fi
        break
    done
    echo "check $n: $rc"
done < /t/scripts
"""


@pytest.mark.containers
@pytest.mark.parametrize("image", [BUSYBOX_IMAGE, PYTHON_IMAGE])
def test_healthcheck_scripts_answer_in_minimal_images(runtime: str, image: str, tmp_path: Path,
                                                      unique_name: Callable[[str], str]) -> None:
    """The CMD-SHELL lines of tcp and http probes, run in images without curl: busybox (nc,
    no working wget) and Debian's python3-minimal (python3, no http.client)."""
    from kstlib_tasks.export.compose import http_script, tcp_script
    from kstlib_tasks.export.plan import Check

    cases = [("pass", tcp_script(Check("tcp", port=5000))),
             ("pass", http_script(Check("http", port=8081, path="/index.html"))),
             ("fail", tcp_script(Check("tcp", port=5001))),
             ("fail", http_script(Check("http", port=8081, path="/missing"))),
             ("fail", http_script(Check("http", port=8082, path="/")))]
    assert not any("\n" in script for _, script in cases)
    (tmp_path / "scripts").write_text("".join(f"{want}\n{script}\n" for want, script in cases))
    (tmp_path / "runner.sh").write_text(RUNNER)
    if image == BUSYBOX_IMAGE:
        (tmp_path / "main.sh").write_text(BUSYBOX_SERVERS + "sh /t/runner.sh\n")
    else:
        (tmp_path / "server.py").write_text(PYTHON_SERVER)
        (tmp_path / "main.sh").write_text("/usr/bin/python3 /t/server.py &\nsh /t/runner.sh\n")
    done = _run([runtime, "run", "--rm", "--pull=never", "--name", unique_name("health"),
                 "-v", f"{tmp_path}:/t:ro", image, "sh", "/t/main.sh"], tmp_path)
    assert done.code == 0, done.err
    assert done.out.split("\n")[:5] == ["check 1: 0", "check 2: 0", "check 3: 1", "check 4: 1",
                                        "check 5: 1"], done.out + done.err


# =========================================================================== Compose


@dataclass
class Project:
    name: str
    file: Path

    def compose(self, *args: str, timeout: float = 300) -> Done:
        return _run(["docker-compose", "-f", self.file.name, "-p", self.name, *args],
                    self.file.parent, timeout=timeout)


@pytest.fixture
def compose_project(stack: Stack) -> Iterator[Project]:
    if shutil.which("docker-compose") is None:
        _unavailable("docker-compose is not installed (apt-get install docker-compose)")
    _needs_runtime("docker")
    project = Project(f"{PREFIX}stack", stack.root / "compose.yml")
    yield project
    if project.file.exists():
        project.compose("down", "--volumes", "--remove-orphans", "--timeout", "2")
    subprocess.run([DOCKER, "volume", "rm", "-f", f"{PREFIX}-data"], capture_output=True,
                   timeout=60)


def _compose_containers(project: str) -> list[dict[str, str]]:
    done = subprocess.run([DOCKER, "ps", "-a", "--filter",
                           f"label=com.docker.compose.project={project}", "--format",
                           "{{json .}}"], capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.docker
def test_compose_output_passes_docker_compose_config(stack: Stack,
                                                     compose_project: Project) -> None:
    stack.export("compose", compose_project.file.name)
    assert "version" not in yaml.safe_load(compose_project.file.read_text())
    done = compose_project.compose("config")
    assert done.code == 0, done.err
    resolved = yaml.safe_load(done.out)
    n = stack.names
    assert list(resolved["services"]) == sorted([n["db"], n["migrate"], n["api"], n["worker"]])
    assert resolved["services"][n["worker"]]["depends_on"] == {
        n["api"]: {"condition": "service_healthy"}}


@pytest.mark.docker
def test_compose_up_brings_the_stack_up_in_order(stack: Stack,
                                                 compose_project: Project) -> None:
    stack.export("compose", compose_project.file.name)
    n = stack.names
    up = compose_project.compose("up", "-d")
    # up -d returns once every service started, each after its dependencies' conditions:
    # db healthy (python3 tcp check), migrate completed, api healthy (busybox nc http check)
    assert up.code == 0, up.out + up.err

    def logs(service: str) -> str:
        return compose_project.compose("logs", "--no-color", service).out

    assert "migrated" in logs(n["migrate"])
    assert "db listening" in logs(n["db"])
    retry_until(lambda: "worker started: hello stack from the host" in logs(n["worker"]),
                timeout=60)

    def states() -> dict[str, str]:
        return {c["Names"]: c["Status"] for c in _compose_containers(compose_project.name)}

    retry_until(lambda: all("(healthy)" in states().get(f"{compose_project.name}_{s}_1", "")
                            for s in (n["db"], n["api"], n["worker"])), timeout=60)
    assert states()[f"{compose_project.name}_{n['migrate']}_1"].startswith("Exited (0)")
    down = compose_project.compose("down", "--volumes", "--timeout", "2")
    assert down.code == 0, down.err
    assert _compose_containers(compose_project.name) == []
    volumes = subprocess.run([DOCKER, "volume", "ls", "-q"], capture_output=True, text=True,
                             timeout=60).stdout.split()
    assert f"{PREFIX}-data" not in volumes
