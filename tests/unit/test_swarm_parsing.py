"""The swarm backend's pure parts: config values, ``service create`` arguments, and what a
docker 20.10 engine prints for ``service ls / inspect / ps`` (captured in the swarm lab)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol

from kstlib_tasks import backends
from kstlib_tasks.backends.base import Launch
from kstlib_tasks.backends.swarm import TYPE, SwarmOptions
from kstlib_tasks.backends.swarm import parsing as p
from kstlib_tasks.backends.swarm.backend import SwarmBackend
from kstlib_tasks.config_parser import parse_config
from kstlib_tasks.engine import drift
from kstlib_tasks.models import SessionSpec, State

# `service ls`, `service ps crash web` and `service inspect crash` (trimmed) from the lab.
LS = """\
{"ID":"yiz3relh2gcj","Image":"localhost/kstlib-test-busybox:latest","Mode":"replicated","Name":"crash","Ports":"","Replicas":"0/1"}
{"ID":"kiqr84nm672r","Image":"localhost/kstlib-test-busybox:latest","Mode":"replicated","Name":"web","Ports":"","Replicas":"2/2"}
"""
PS = """\
{"CurrentState":"Failed 2 seconds ago","DesiredState":"Shutdown","Error":"\\"task: non-zero exit (4)\\"","ID":"qe7kq2p3qkpwrefr6gqqu8ube","Image":"localhost/kstlib-test-busybox:latest","Name":"crash.1","Node":"swl628761-n1","Ports":""}
{"CurrentState":"Failed 3 seconds ago","DesiredState":"Shutdown","Error":"\\"task: non-zero exit (4)\\"","ID":"oj26zjswr5302lvgflm8eclop","Image":"localhost/kstlib-test-busybox:latest","Name":"crash.1","Node":"swl628761-n1","Ports":""}
{"CurrentState":"Failed 4 seconds ago","DesiredState":"Shutdown","Error":"\\"task: non-zero exit (4)\\"","ID":"kfpcprkpd6ph90auamtfy931h","Image":"localhost/kstlib-test-busybox:latest","Name":"crash.1","Node":"swl628761-n1","Ports":""}
{"CurrentState":"Running 4 seconds ago","DesiredState":"Running","Error":"","ID":"3n0ai3bp3uawbcec361p9i4sc","Image":"localhost/kstlib-test-busybox:latest","Name":"web.1","Node":"swl628761-n1","Ports":""}
{"CurrentState":"Running 4 seconds ago","DesiredState":"Running","Error":"","ID":"jc0ck4ubbcj0vyj39mcw2wdq3","Image":"localhost/kstlib-test-busybox:latest","Name":"web.2","Node":"swl628761-n1","Ports":""}
"""  # noqa: E501
DETAILS = {"docker_host": "unix:///tmp/lab/n1.sock"}


def service(name: str, replicas: int | None = 1, labels: dict[str, str] | None = None,
            args: tuple[str, ...] = ("sh", "-c", "exit 4")) -> dict[str, Any]:
    mode: dict[str, Any] = {"Global": {}} if replicas is None else {
        "Replicated": {"Replicas": replicas}}
    return {
        "ID": "yiz3relh2gcjfdzbvix7wo3e0",
        "CreatedAt": "2026-12-01T09:47:46.942435201Z",
        "Spec": {
            "Name": name,
            "Labels": labels or {},
            "TaskTemplate": {"ContainerSpec": {
                "Image": "localhost/kstlib-test-busybox:latest", "Args": list(args),
                "Init": True, "StopGracePeriod": 10000000000}},
            "Mode": mode,
        },
    }


def task(name: str, slot: str = "1", *, desired: str = "Running", state: str = "Running",
         error: str = "", node: str = "n1", tid: str = "t") -> p.Task:
    return p.Task(tid, name, slot, node, desired.lower(), state.lower(), error)


def status(svc: dict[str, Any], tasks: list[p.Task], **kw: Any):
    return p.service_status(svc, tasks, scope="unix:///tmp/lab/n1.sock", scope_details=DETAILS,
                            **kw)


# ------------------------------------------------------------------------------ the registry


def test_swarm_is_registered_and_its_descriptor_imports_nothing_heavy() -> None:
    assert "swarm" in backends.names()
    assert backends.get("swarm") is TYPE
    assert TYPE.options_class is SwarmOptions


# ------------------------------------------------------------------------------ ops.swarm


@pytest.mark.parametrize("host", [
    "unix:///var/run/docker.sock", "ssh://root@10.0.0.2", "ssh://deploy@host.example:2222",
    "ssh://box", "tcp://10.1.2.3:2376", "ssh://root@[fd00::1]:22",
])
def test_docker_host_accepts(host: str) -> None:
    assert p.docker_host(host) == host


@pytest.mark.parametrize(("host", "words"), [
    ("/var/run/docker.sock", "expected unix://"),
    ("unix://relative.sock", "absolute"),
    ("unix:///a/../b.sock", "'..'"),
    ("ssh://-oProxyCommand=x@host", "bad user"),
    ("ssh://root@host;rm", "bad host"),
    ("tcp://host", "give the port"),
    ("http://host:80", "unknown scheme"),
    ("ssh://root@host:99999", "1-65535"),
    ("unix:///x.sock\n", "invalid docker_host"),
])
def test_docker_host_refuses(host: str, words: str) -> None:
    with pytest.raises(vol.Invalid, match=words.replace("(", r"\(")):
        p.docker_host(host)


def test_ops_settings() -> None:
    assert p.ops_settings(None) is None
    assert p.ops_settings({}) is None
    assert p.ops_settings({"context": "prod"}) == {"context": "prod"}
    assert p.scope_of({"context": "prod"}) == "context:prod"
    assert p.docker_args("context:prod") == ["--context", "prod"]
    assert p.docker_args("ssh://a@b") == ["-H", "ssh://a@b"]
    assert p.docker_args(None) == []
    with pytest.raises(vol.MultipleInvalid) as both:
        p.ops_settings({"context": "prod", "docker_host": "ssh://a@b"})
    assert "not both" in str(both.value)
    with pytest.raises(vol.MultipleInvalid) as typo:
        p.ops_settings({"dockerhost": "ssh://a@b"})
    assert typo.value.errors[0].path == ["dockerhost"]
    assert "did you mean 'docker_host'" in typo.value.errors[0].msg


# ------------------------------------------------------------------------------ session keys


def test_constraints_are_normalized_and_checked() -> None:
    assert p.constraints(["node.labels.role == bot", "node.role!=manager"]) == (
        "node.labels.role==bot", "node.role!=manager")
    assert p.constraints("engine.labels.zone==eu-1") == ("engine.labels.zone==eu-1",)
    for bad in ["node.role==boss", "node.labels.x=1", "role==bot", "node.hostname==a;b",
                "node.labels.x==$(id)", "node.labels.x==", 3]:
        with pytest.raises(vol.Invalid):
            p.constraints([bad])
    with pytest.raises(vol.Invalid, match="more than 20"):
        p.constraints(["node.role==worker"] * 21)


def test_replicas_and_grace() -> None:
    assert p.replicas("3") == 3 and p.replicas(0) == 0 and p.replicas(100) == 100
    for bad in [101, -1, True, "two", 1.5]:
        with pytest.raises(vol.Invalid):
            p.replicas(bad)
    assert p.grace_period("2.5") == 2.5 and p.grace_period(30) == 30.0
    with pytest.raises(vol.Invalid):
        p.grace_period(4000)


def test_publish_in_host_mode_only_with_a_host_port() -> None:
    assert p.publish_arg("8080:80") == "mode=host,target=80,published=8080,protocol=tcp"
    assert p.publish_arg("53:53/udp") == "mode=host,target=53,published=53,protocol=udp"
    with pytest.raises(ValueError, match="one address"):
        p.publish_arg("127.0.0.1:8080:80")
    with pytest.raises(ValueError, match="one address"):
        p.publish_arg("[::1]:8080:80")
    with pytest.raises(ValueError, match="host port"):
        p.publish_arg("80")


def test_mounts() -> None:
    assert p.mount_arg("/srv/data:/data:ro") == "type=bind,source=/srv/data,target=/data,readonly"
    assert p.mount_arg("/srv:/srv:rw,rslave") == (
        "type=bind,source=/srv,target=/srv,bind-propagation=rslave")
    assert p.mount_arg("cache:/cache:nocopy") == (
        "type=volume,source=cache,target=/cache,volume-nocopy=true")
    with pytest.raises(ValueError, match="'z' is not supported"):
        p.mount_arg("/srv:/srv:z")
    with pytest.raises(ValueError, match="comma"):
        p.mount_arg("/a,b:/srv")


def test_create_argv() -> None:
    argv = p.create_argv(
        name="bot", image="reg.example:5000/bot@sha256:" + "a" * 64, argv=("python", "-m", "bot"),
        env={"MODE": "prod"}, fingerprint={"image": "abc"}, overrides={}, restart="on-failure",
        max_restarts=2, replicas=3, constraints=("node.labels.role==bot",),
        ports=("8080:80",), volumes=("/srv/bot:/data",), init=True, grace=30.0,
        working_dir=None, log_max_bytes=1048576)
    assert argv[:8] == ["service", "create", "--detach", "--no-resolve-image",
                        "--endpoint-mode", "dnsrr", "--name", "bot"]
    text = " ".join(argv)
    assert "--label io.kstlib.session=bot" in text
    assert f"--label io.kstlib.fingerprint={p.label_value({'image': 'abc'})}" in text
    assert "--replicas 3 --restart-condition on-failure --restart-delay 1s" in text
    assert "--restart-max-attempts 2" in text and "--stop-grace-period 30s" in text
    assert "--log-driver json-file --log-opt max-size=1048576 --log-opt max-file=2" in text
    assert "--init" in argv and "--env MODE=prod" in text
    assert "--mount type=bind,source=/srv/bot,target=/data" in text
    assert "--publish mode=host,target=80,published=8080,protocol=tcp" in text
    assert "--constraint node.labels.role==bot" in text
    assert argv[-4:] == ["reg.example:5000/bot@sha256:" + "a" * 64, "python", "-m", "bot"]
    plain = p.create_argv(
        name="x", image="img", argv=(), env={}, fingerprint={}, overrides={"image": "img"},
        restart="no", max_restarts=5, replicas=1, constraints=(), ports=(), volumes=(),
        init=False, grace=10.0, working_dir="/work", log_max_bytes=65536)
    assert "--restart-condition none" in " ".join(plain)
    assert "--restart-max-attempts" not in plain and "--init" not in plain
    assert "io.kstlib.overrides=" in " ".join(plain) and plain[-3:] == ["--workdir", "/work", "img"]
    always = p.create_argv(
        name="x", image="img", argv=(), env={}, fingerprint={}, overrides={}, restart="always",
        max_restarts=0, replicas=1, constraints=(), ports=(), volumes=(), init=True,
        grace=10.0, working_dir=None, log_max_bytes=65536)
    assert "--restart-condition any" in " ".join(always)
    assert "--restart-max-attempts" not in always  # 0: no limit


# ------------------------------------------------------------------------------ ls / ps


def test_parse_ls_and_tasks() -> None:
    listed = p.parse_ls(LS)
    assert [i["Name"] for i in listed] == ["crash", "web"]
    tasks = p.parse_tasks(PS)
    assert [(t.service, t.slot, t.state, t.desired) for t in tasks][:4] == [
        ("crash", "1", "failed", "shutdown"), ("crash", "1", "failed", "shutdown"),
        ("crash", "1", "failed", "shutdown"), ("web", "1", "running", "running")]
    assert tasks[0].error == "task: non-zero exit (4)" and tasks[0].exit_code == 4
    assert tasks[3].running and tasks[3].alive and not tasks[0].alive
    assert p.task_exit_code("complete", "") == 0
    assert p.task_exit_code("rejected", "No such image: x") is None


def test_exited_service_with_restarts_counted() -> None:
    crash = status(service("crash", labels={"io.kstlib.session": "crash",
                                            "io.kstlib.restart": "on-failure"}),
                   p.parse_tasks(PS))
    assert crash.state is State.EXITED and crash.exit_code == 4
    assert crash.restarts == 2  # --restart-max-attempts 2: 3 tasks in the slot
    assert crash.managed and crash.backend == "swarm"
    assert crash.command == "sh -c 'exit 4'" and crash.created_at == "2026-12-01T09:47:46Z"
    assert crash.details["replicas"] == "0/1" and crash.details["nodes"] == "swl628761-n1"
    assert crash.details["last_error"] == "task: non-zero exit (4)"
    assert crash.details["last_exit_code"] == 4
    assert crash.details["docker_host"] == "unix:///tmp/lab/n1.sock"


def test_running_replicas_and_foreign_service() -> None:
    web = status(service("web", replicas=2, args=("sleep", "300")), p.parse_tasks(PS))
    assert web.state is State.RUNNING and web.exit_code is None and web.restarts == 0
    assert web.details["replicas"] == "2/2" and not web.managed and web.recorded is None
    assert web.note is None


def test_converging_and_restarting_count_as_running_with_a_note() -> None:
    fresh = status(service("svc"), [])
    assert fresh.state is State.RUNNING and fresh.note == "0 of 1 replicas running: starting"
    pending = status(service("svc"), [task("svc", state="Pending",
                                           error="no suitable node (scheduling constraints)")])
    assert pending.state is State.RUNNING
    assert pending.note == "0 of 1 replicas running: 1 pending (no suitable node (scheduling "\
        "constraints))"
    delay = status(service("svc"), [task("svc", desired="Ready", state="Ready", tid="b"),
                                    task("svc", desired="Shutdown", state="Failed",
                                         error="task: non-zero exit (1)", tid="a")])
    assert delay.state is State.RUNNING and delay.restarts == 1


def test_completed_scaled_down_and_global() -> None:
    done = status(service("job"), [task("job", desired="Shutdown", state="Complete")])
    assert done.state is State.EXITED and done.exit_code == 0
    idle = status(service("idle", replicas=0), [])
    assert idle.state is State.STOPPED and idle.details["replicas"] == "0/0"
    spread = status(service("agent", replicas=None),
                    [task("agent", "n1id"), task("agent", "n2id", node="n2")])
    assert spread.state is State.RUNNING and spread.details["replicas"] == "2/2"
    assert spread.details["mode"] == "global"
    assert spread.details["nodes"] == "n1, n2"


def test_a_task_on_a_node_that_is_down_is_lost() -> None:
    stuck = [task("pinned", desired="Shutdown", state="Running", node="n2")]
    assert p.stale(stuck)
    pinned = status(service("pinned"), stuck, down=frozenset({"n2"}))
    assert pinned.state is State.EXITED and pinned.exit_code is None
    assert pinned.note == "1 task lost: node n2 is down"
    stopping = status(service("pinned"), stuck)  # node up: being stopped
    assert stopping.state is State.RUNNING
    assert stopping.note == "0 of 1 replicas running: 1 being stopped on n2"
    half = status(service("spread", replicas=2),
                  [task("spread", "1"), task("spread", "2", desired="Shutdown", node="n2")],
                  down=frozenset({"n2"}))
    assert half.state is State.RUNNING
    assert half.note == "1 of 2 replicas running; 1 task lost: node n2 is down"
    assert p.down_nodes('{"Hostname":"n1","Status":"Ready"}\n'
                        '{"Hostname":"n2","Status":"Down"}') == frozenset({"n2"})


def test_engine_problems_are_told_apart() -> None:
    assert p.engine_problem("Cannot connect to the Docker daemon at unix:///x.sock. Is the "
                            "docker daemon running?") == "unreachable"
    assert p.engine_problem("Error response from daemon: This node is not a swarm manager. "
                            "Use \"docker swarm init\"") == "not-manager"
    assert p.engine_problem('context "prod" does not exist') == "unreachable"
    assert p.engine_problem("error during connect: ssh: connect to host x port 22") == (
        "unreachable")
    assert p.engine_problem("invalid reference format") is None


def test_task_record() -> None:
    item = {"ID": "t1", "Status": {"State": "shutdown", "ContainerStatus": {
        "ContainerID": "c1", "ExitCode": 143}}}
    assert p.task_record(item) == ("t1", "shutdown", 143, "c1")
    assert p.task_record({"ID": "t2", "Status": {"State": "running", "ContainerStatus": {
        "ExitCode": 0}}})[2] is None


# ------------------------------------------------------------------------------ config


def write(folder: Path, text: str) -> Path:
    path = folder / "kstlib.conf.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_config_with_swarm_sessions(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    config = parse_config(write(tmp_path, """\
        ops:
          swarm:
            docker_host: ssh://deploy@manager.example
          sessions:
            bot:
              backend: swarm
              image: reg.example:5000/bot:1
              replicas: 3
              constraints: [node.labels.role==bot]
              ports: ["8080:80"]
              volumes: ["./data:/data:ro"]
              restart: on-failure
              max_restarts: 2
            dev:
              command: sleep 9
              depends_on: [bot]
        """).read_text(), tmp_path / "kstlib.conf.yml")
    assert config.invalid == {}
    bot = config.sessions["bot"]
    assert isinstance(bot.options, SwarmOptions)
    assert bot.options.replicas == 3 and bot.options.constraints == ("node.labels.role==bot",)
    assert bot.options.volumes == (f"{tmp_path}/data:/data:ro",)
    assert TYPE.configured_scope(bot, config) == "ssh://deploy@manager.example"
    assert TYPE.scopes(config) == ["ssh://deploy@manager.example"]
    assert TYPE.summary(bot) == "swarm: image reg.example:5000/bot:1, 3 replicas"


def test_config_problems_name_their_line(tmp_path: Path) -> None:
    text = """\
        ops:
          sessions:
            a:
              backend: swarm
              image: img
              replicas: 500
            b:
              backend: swarm
              ports: ["127.0.0.1:8080:80"]
              image: img
            c:
              backend: swarm
              command: sleep 9
            d:
              command: sleep 9
              replicas: 2
            e:
              backend: swarm
              image: img
              constraints: ["node.role==boss"]
        """
    config = parse_config(write(tmp_path, text).read_text(), tmp_path / "kstlib.conf.yml")
    assert config.invalid["a"] == (6, "session 'a': replicas: replicas must be between 0 and "
                                      "100, got 500")
    line, reason = config.invalid["b"]
    assert line == 9 and "swarm cannot publish on one address" in reason
    assert "image: required for backend 'swarm'" in config.invalid["c"][1]
    assert config.invalid["d"][1] == ("session 'd': replicas: unknown key for backend 'tmux' "
                                      "(it is a key of backend 'swarm')")
    assert config.invalid["e"][0] == 20 and "node.role is manager or worker" in (
        config.invalid["e"][1])


def test_bad_ops_swarm_makes_the_file_unusable(tmp_path: Path) -> None:
    from kstlib_tasks.errors import ConfigError

    with pytest.raises(ConfigError, match=r"kstlib.conf.yml:3: ops.swarm.docker_host: invalid"):
        parse_config(write(tmp_path, """\
            ops:
              swarm:
                docker_host: http://x
            """).read_text(), tmp_path / "kstlib.conf.yml")


def test_a_config_without_swarm_looks_at_no_swarm(tmp_path: Path) -> None:
    config = parse_config(write(tmp_path, "ops:\n  sessions:\n    a:\n      command: sleep 9\n"
                                ).read_text(), tmp_path / "kstlib.conf.yml")
    assert TYPE.scopes(config) == []


def test_drift_covers_replicas_and_constraints() -> None:
    spec = SessionSpec("bot", "swarm", ("sleep", "9"),
                       options=SwarmOptions(image_ref="img", replicas=2,
                                            constraints=("node.role==worker",)))
    recorded = drift.fingerprint(spec, spec.command)
    for changed, field in [(SwarmOptions(image_ref="img", replicas=3,
                                         constraints=("node.role==worker",)), "replicas"),
                           (SwarmOptions(image_ref="img", replicas=2), "constraints"),
                           (SwarmOptions(image_ref="img2", replicas=2,
                                         constraints=("node.role==worker",)), "image")]:
        now = drift.fingerprint(spec.with_changes(options=changed), spec.command)
        assert drift.differences(recorded, now) == (field,)


def test_start_arguments_from_a_launch(tmp_path: Path) -> None:
    spec = SessionSpec("bot", "swarm", ("sleep", "9"), env={"A": "1"},
                       options=SwarmOptions(image_ref="img", ports=("127.0.0.1:1:2",)))
    backend = SwarmBackend("unix:///tmp/none.sock")
    assert backend.runner.argv("ps") == ["docker", "-H", "unix:///tmp/none.sock", "ps"]
    from kstlib_tasks.errors import ValidationError

    with pytest.raises(ValidationError, match="one address"):
        backend.create_args(Launch(spec=spec, argv=spec.command, env=spec.env))
    ok = spec.with_changes(options=SwarmOptions(image_ref="img", replicas=0))
    argv = backend.create_args(Launch(spec=ok, argv=ok.command, env=ok.env))
    assert "--replicas" in argv and argv[argv.index("--replicas") + 1] == "0"


def test_attach_points_at_logs_follow() -> None:
    from kstlib_tasks.errors import BackendError

    with pytest.raises(BackendError) as error:
        SwarmBackend(None).attach("bot")
    assert error.value.line("kstlib").endswith("(follow its output instead: kstlib ops logs "
                                               "bot -f)")
    assert error.value.line("inv").endswith("inv bot.logs -f)")


def test_docker_error_lines_are_unwrapped() -> None:
    from kstlib_tasks.backends.swarm.backend import _error_line

    assert _error_line("Status: Cannot connect to the Docker daemon at unix:///x.sock. Is the "
                       "docker daemon running?, Code: 1\n") == (
        "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?")
    assert _error_line("Error response from daemon: rpc error: code = AlreadyExists desc = "
                       "name conflicts") == "AlreadyExists desc = name conflicts"


def test_exec_probe_finds_a_task_that_started_here_between_its_two_looks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``ps`` sees no container yet, then ``status`` says the task runs: its container is
    here now, the probe runs in it (no 'its tasks run on another node' error)."""
    from kstlib_tasks.errors import BackendError
    from kstlib_tasks.models import SessionStatus
    from kstlib_tasks.runner import Result

    backend = SwarmBackend("unix:///tmp/kt-no-engine.sock")
    answers = iter(["", "c0ffee\n"])
    calls: list[tuple[str, ...]] = []

    def run(*args: str, **kw: Any) -> Result:
        calls.append(args)
        if args[0] == "ps":
            return Result(next(answers), "", 0)
        return Result("", "", 0)

    running = SessionStatus(name="bot", backend="swarm", state=State.RUNNING,
                            details={"replicas": "1/1", "nodes": "n1"})
    monkeypatch.setattr(backend.runner, "run", run)
    monkeypatch.setattr(backend, "status", lambda name: running)
    assert backend.run_probe("bot", ["true"], env={}, cwd=None, timeout=5) == 0
    assert calls[-1] == ("exec", "c0ffee", "true")

    # still none here once the task runs: it runs elsewhere, said at once
    answers = iter(["", ""])
    with pytest.raises(BackendError, match="its tasks run on n1, which kstlib cannot reach"):
        backend.run_probe("bot", ["true"], env={}, cwd=None, timeout=5)


def test_create_argv_keeps_env_values_off_the_command_line(tmp_path) -> None:
    argv = p.create_argv(
        name="x", image="img", argv=(), env={"TOKEN": "s3cret"}, fingerprint={},
        overrides={}, restart="no", max_restarts=0, replicas=1, constraints=(), ports=(),
        volumes=(), init=False, grace=10.0, working_dir=None, log_max_bytes=65536,
        folder=str(tmp_path))
    path = argv[argv.index("--env-file") + 1]
    assert Path(path).read_text() == "TOKEN=s3cret\n" and not any("s3cret" in a for a in argv)
    assert (tmp_path / "env").stat().st_mode & 0o777 == 0o600
