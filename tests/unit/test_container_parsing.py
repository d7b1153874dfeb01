"""Parsing of podman and docker output (``backends.container.parsing``), on real captured text
(no runtime needed).

Captured on this project's test machine (podman 4.3.1, docker engine 20.10.24 with the 28.2 and
20.10 clients) from two containers: ``capz-run`` (``--init``, our labels plus ``other=a,b``,
printing to stdout and stderr) and ``capz-exit`` (``sh -c 'exit 3'``). ``ps`` output is verbatim;
``inspect`` objects are trimmed to the keys we read (the real ones are several hundred lines).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kstlib_tasks.backends.base import Launch
from kstlib_tasks.backends.container import ContainerOptions
from kstlib_tasks.backends.container.backend import ContainerBackend
from kstlib_tasks.backends.container.parsing import (
    LABEL_FINGERPRINT,
    LABEL_OVERRIDES,
    LABEL_RESTART,
    LABEL_SESSION,
    k8s_file_lines,
    label_value,
    load_json_objects,
    map_state,
    merge_logs,
    parse_labels,
    parse_ps,
    parse_timestamp,
    recorded_fingerprint,
    runtime_kind,
    status_from_inspect,
    tail_k8s_file,
)
from kstlib_tasks.errors import ValidationError
from kstlib_tasks.models import SessionSpec, State

# `podman ps -a --format json` (TZ=Europe/Paris: podman prints Unix times, unaffected)
PODMAN_PS = r"""[
  {
    "AutoRemove": false,
    "Command": [
      "sh",
      "-c",
      "echo out1; echo err1 \u003e\u00262; echo out2; sleep 300"
    ],
    "CreatedAt": "1 second ago",
    "Exited": false,
    "ExitedAt": -62135596800,
    "ExitCode": 0,
    "Id": "b37a68284b2aae115ca2f2cd8b8abe99fb2f09d8078a9e60465c4317725ca761",
    "Image": "localhost/kstlib-test-busybox:latest",
    "ImageID": "46ff5b7ecc14c3465590f8dbf232902bff12433dfcb1cee59232de3495b6169a",
    "IsInfra": false,
    "Labels": {
      "io.buildah.version": "1.28.2",
      "io.kstlib.session": "capz-run",
      "io.kstlib.spec": "0123456789abcdef",
      "other": "a,b"
    },
    "Mounts": [],
    "Names": [
      "capz-run"
    ],
    "Namespaces": {

    },
    "Networks": [
      "podman"
    ],
    "Pid": 12646,
    "Pod": "",
    "PodName": "",
    "Ports": null,
    "Size": null,
    "StartedAt": 1795615867,
    "State": "running",
    "Status": "Up 2 seconds ago",
    "Created": 1795615867
  },
  {
    "AutoRemove": false,
    "Command": [
      "sh",
      "-c",
      "exit 3"
    ],
    "CreatedAt": "1 second ago",
    "Exited": true,
    "ExitedAt": 1795615868,
    "ExitCode": 3,
    "Id": "005293dbce9199a49db029e87a81db59997779764f3ad31ad78945cd817c914b",
    "Image": "localhost/kstlib-test-busybox:latest",
    "ImageID": "46ff5b7ecc14c3465590f8dbf232902bff12433dfcb1cee59232de3495b6169a",
    "IsInfra": false,
    "Labels": {
      "io.buildah.version": "1.28.2"
    },
    "Mounts": [],
    "Names": [
      "capz-exit"
    ],
    "Namespaces": {

    },
    "Networks": [
      "podman"
    ],
    "Pid": 0,
    "Pod": "",
    "PodName": "",
    "Ports": null,
    "Size": null,
    "StartedAt": 1795615868,
    "State": "exited",
    "Status": "Exited (3) 1 second ago",
    "Created": 1795615867
  }
]
"""

# `docker ps -a --no-trunc --format '{{json .}}'`, docker 28.2 client, TZ=Europe/Paris
DOCKER_PS = r"""{"Command":"\"sh -c 'exit 3'\"","CreatedAt":"2026-11-25 15:11:08 +0100 CET","ID":"5ace68cb464cd446983ddf538873108d960c3222399eb0a0a44197593d4f8bd4","Image":"localhost/kstlib-test-busybox:latest","Labels":"","LocalVolumes":"0","Mounts":"","Names":"capz-exit","Networks":"bridge","Platform":null,"Ports":"","RunningFor":"1 second ago","Size":"0B (virtual 1.99MB)","State":"exited","Status":"Exited (3) 1 second ago"}
{"Command":"\"sh -c 'echo out1; echo err1 \u003e\u00262; echo out2; sleep 300'\"","CreatedAt":"2026-11-25 15:11:08 +0100 CET","ID":"7335a2fa740df4f54425b04a5ce13aab619f909e1bba3ecb86d680968b481eee","Image":"localhost/kstlib-test-busybox:latest","Labels":"io.kstlib.session=capz-run,io.kstlib.spec=0123456789abcdef,other=a,b","LocalVolumes":"0","Mounts":"","Names":"capz-run","Networks":"bridge","Platform":null,"Ports":"","RunningFor":"1 second ago","Size":"0B (virtual 1.99MB)","State":"running","Status":"Up 1 second"}
"""  # noqa: E501

# same listing, docker 20.10 client (no "Platform", labels in another order, UTC)
DOCKER_20_PS = r"""{"Command":"\"sh -c 'exit 3'\"","CreatedAt":"2026-11-25 14:11:08 +0000 UTC","ID":"5ace68cb464cd446983ddf538873108d960c3222399eb0a0a44197593d4f8bd4","Image":"localhost/kstlib-test-busybox:latest","Labels":"","LocalVolumes":"0","Mounts":"","Names":"capz-exit","Networks":"bridge","Ports":"","RunningFor":"1 second ago","Size":"0B (virtual 1.99MB)","State":"exited","Status":"Exited (3) 1 second ago"}
{"Command":"\"sh -c 'echo out1; echo err1 \u003e\u00262; echo out2; sleep 300'\"","CreatedAt":"2026-11-25 14:11:08 +0000 UTC","ID":"7335a2fa740df4f54425b04a5ce13aab619f909e1bba3ecb86d680968b481eee","Image":"localhost/kstlib-test-busybox:latest","Labels":"io.kstlib.spec=0123456789abcdef,other=a,b,io.kstlib.session=capz-run","LocalVolumes":"0","Mounts":"","Names":"capz-run","Networks":"bridge","Ports":"","RunningFor":"1 second ago","Size":"0B (virtual 1.99MB)","State":"running","Status":"Up 1 second"}
"""  # noqa: E501

# `podman inspect --type container capz-run capz-exit`, trimmed
PODMAN_INSPECT = r"""[
 {
  "Id": "b37a68284b2aae115ca2f2cd8b8abe99fb2f09d8078a9e60465c4317725ca761",
  "Name": "capz-run",
  "Created": "2026-11-25T14:11:07.833247178Z",
  "Path": "/run/podman-init",
  "Args": ["--", "sh", "-c", "echo out1; echo err1 >&2; echo out2; sleep 300"],
  "ImageName": "localhost/kstlib-test-busybox:latest",
  "Image": "46ff5b7ecc14c3465590f8dbf232902bff12433dfcb1cee59232de3495b6169a",
  "State": {
   "Status": "running", "Running": true, "Paused": false, "Restarting": false,
   "OOMKilled": false, "Dead": false, "Pid": 12646, "ExitCode": 0, "Error": "",
   "StartedAt": "2026-11-25T14:11:07.93681603Z", "FinishedAt": "0001-01-01T00:00:00Z"
  },
  "Config": {
   "Image": "localhost/kstlib-test-busybox:latest",
   "Labels": {"io.buildah.version": "1.28.2", "io.kstlib.session": "capz-run",
              "io.kstlib.spec": "0123456789abcdef", "other": "a,b"},
   "Cmd": ["sh", "-c", "echo out1; echo err1 >&2; echo out2; sleep 300"],
   "Entrypoint": ""
  }
 },
 {
  "Id": "005293dbce9199a49db029e87a81db59997779764f3ad31ad78945cd817c914b",
  "Name": "capz-exit",
  "Created": "2026-11-25T14:11:07.966838124Z",
  "Path": "sh",
  "Args": ["-c", "exit 3"],
  "ImageName": "localhost/kstlib-test-busybox:latest",
  "Image": "46ff5b7ecc14c3465590f8dbf232902bff12433dfcb1cee59232de3495b6169a",
  "State": {
   "Status": "exited", "Running": false, "Paused": false, "Restarting": false,
   "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 3, "Error": "",
   "StartedAt": "2026-11-25T14:11:08.064477636Z", "FinishedAt": "2026-11-25T14:11:08.064404319Z"
  },
  "Config": {
   "Image": "localhost/kstlib-test-busybox:latest",
   "Labels": {"io.buildah.version": "1.28.2"},
   "Cmd": ["sh", "-c", "exit 3"],
   "Entrypoint": ""
  }
 }
]
"""

# `docker inspect --type container capz-run capz-exit`, trimmed
DOCKER_INSPECT = r"""[
 {
  "Id": "7335a2fa740df4f54425b04a5ce13aab619f909e1bba3ecb86d680968b481eee",
  "Name": "/capz-run",
  "Created": "2026-11-25T14:11:08.0876933Z",
  "Path": "sh",
  "Args": ["-c", "echo out1; echo err1 >&2; echo out2; sleep 300"],
  "Image": "sha256:c64b15d074784aedd794cc337298aeb30692fdf5f4439c50fb1b75229472572b",
  "State": {
   "Status": "running", "Running": true, "Paused": false, "Restarting": false,
   "OOMKilled": false, "Dead": false, "Pid": 12760, "ExitCode": 0, "Error": "",
   "StartedAt": "2026-11-25T14:11:08.291807573Z", "FinishedAt": "0001-01-01T00:00:00Z"
  },
  "Config": {
   "Image": "localhost/kstlib-test-busybox:latest",
   "Labels": {"io.kstlib.session": "capz-run", "io.kstlib.spec": "0123456789abcdef",
              "other": "a,b"},
   "Cmd": ["sh", "-c", "echo out1; echo err1 >&2; echo out2; sleep 300"],
   "Entrypoint": null
  }
 },
 {
  "Id": "5ace68cb464cd446983ddf538873108d960c3222399eb0a0a44197593d4f8bd4",
  "Name": "/capz-exit",
  "Created": "2026-11-25T14:11:08.307382235Z",
  "Path": "sh",
  "Args": ["-c", "exit 3"],
  "Image": "sha256:c64b15d074784aedd794cc337298aeb30692fdf5f4439c50fb1b75229472572b",
  "State": {
   "Status": "exited", "Running": false, "Paused": false, "Restarting": false,
   "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 3, "Error": "",
   "StartedAt": "2026-11-25T14:11:08.476474201Z", "FinishedAt": "2026-11-25T14:11:08.477260276Z"
  },
  "Config": {
   "Image": "localhost/kstlib-test-busybox:latest",
   "Labels": {},
   "Cmd": ["sh", "-c", "exit 3"],
   "Entrypoint": null
  }
 }
]
"""

# `logs --timestamps capz-run`: stdout and stderr as the two pipes received them
PODMAN_LOGS_OUT = (
    "2026-11-25T14:11:07.939703637Z out1\n2026-11-25T14:11:07.939703637Z out2\n"
)
PODMAN_LOGS_ERR = "2026-11-25T14:11:07.939763907Z err1\n"
DOCKER_LOGS_OUT = (
    "2026-11-25T14:11:08.293433543Z out1\n2026-11-25T14:11:08.293450599Z out2\n"
)
DOCKER_LOGS_ERR = "2026-11-25T14:11:08.293629725Z err1\n"

RUN_COMMAND = "sh -c 'echo out1; echo err1 >&2; echo out2; sleep 300'"


def by_name(statuses):
    return {s.name: s for s in statuses}


def test_podman_ps_array():
    found = by_name(parse_ps(PODMAN_PS, "podman"))
    run, done = found["capz-run"], found["capz-exit"]
    assert run.state is State.RUNNING and run.pid == 12646 and run.exit_code is None
    assert run.managed and not done.managed
    assert run.backend == "container" and run.scope == "podman"
    assert run.details["runtime"] == "podman" and run.details["id"].startswith("b37a68284b2a")
    assert run.recorded is None  # no fingerprint label: not comparable with the config
    assert run.image == "localhost/kstlib-test-busybox:latest"
    assert run.command == RUN_COMMAND
    assert run.created_at == "2026-11-25T14:11:07Z"  # Unix 1795615867; "1 second ago" ignored
    assert done.state is State.EXITED and done.exit_code == 3 and done.pid is None
    assert done.command == "sh -c 'exit 3'"


@pytest.mark.parametrize("text", [DOCKER_PS, DOCKER_20_PS], ids=["client-28", "client-20"])
def test_docker_ps_one_object_per_line(text):
    found = by_name(parse_ps(text, "/usr/bin/docker"))
    run, done = found["capz-run"], found["capz-exit"]
    assert run.state is State.RUNNING and run.pid is None  # docker ps has no pid
    assert run.managed and not done.managed
    assert run.scope == "docker" and run.details["runtime"] == "docker"  # from the path
    assert run.details["id"].startswith("7335a2fa740d")
    assert run.command == RUN_COMMAND  # docker's surrounding quotes removed
    # local time with offset (+0100 CET) and UTC give the same instant
    assert run.created_at == "2026-11-25T14:11:08Z"
    assert done.state is State.EXITED and done.exit_code == 3  # read from "Exited (3) ..."


def test_both_runtimes_agree_on_the_same_containers():
    podman = by_name(parse_ps(PODMAN_PS, "podman"))
    docker = by_name(parse_ps(DOCKER_PS, "docker"))
    for name in ("capz-run", "capz-exit"):
        a, b = podman[name], docker[name]
        assert (a.state, a.exit_code, a.image, a.command, a.managed, a.recorded) == (
            b.state, b.exit_code, b.image, b.command, b.managed, b.recorded
        )


@pytest.mark.parametrize(
    ("text", "runtime", "pid"),
    [(PODMAN_INSPECT, "podman", 12646), (DOCKER_INSPECT, "docker", 12760)],
)
def test_inspect(text, runtime, pid):
    items = load_json_objects(text)
    run = status_from_inspect(items[0], runtime)
    done = status_from_inspect(items[1], runtime)
    assert run.name == "capz-run"  # docker's leading "/" removed
    assert run.state is State.RUNNING and run.pid == pid and run.exit_code is None
    assert run.image == "localhost/kstlib-test-busybox:latest"  # not docker's sha256 Image
    assert run.command == RUN_COMMAND  # from Config, not podman's /run/podman-init Path
    assert run.managed and not done.managed
    assert run.created_at is not None and run.created_at.startswith("2026-11-25T14:11:0")
    assert done.state is State.EXITED and done.exit_code == 3 and done.pid is None
    assert run.scope == runtime and run.details["id"] == items[0]["Id"]


def test_empty_listings():
    assert parse_ps("", "docker") == []
    assert parse_ps("[]\n", "podman") == []


def test_labels_text_and_mapping():
    assert parse_labels("io.kstlib.session=a,io.kstlib.spec=f00,other=a,b") == {
        LABEL_SESSION: "a", "io.kstlib.spec": "f00", "other": "a,b"
    }
    assert parse_labels("") == {} and parse_labels(None) == {}
    assert parse_labels({"x": None}) == {"x": ""}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1795615867, "2026-11-25T14:11:07Z"),
        ("2026-11-25T14:11:07.833247178Z", "2026-11-25T14:11:07Z"),
        ("2026-11-25T15:11:07.8+01:00", "2026-11-25T14:11:07Z"),
        ("2026-11-25 15:11:08 +0100 CET", "2026-11-25T14:11:08Z"),
        ("0001-01-01T00:00:00Z", None),  # Go's zero time: never happened
        (-62135596800, None),
        ("1 second ago", None),  # podman's humanized CreatedAt
        (None, None),
    ],
)
def test_timestamps(value, expected):
    assert parse_timestamp(value) == expected


def test_states():
    assert map_state("running") is State.RUNNING
    assert map_state("exited") is State.EXITED
    assert map_state("stopped") is State.EXITED  # podman, right after `podman stop`
    assert map_state("removing") is State.EXITED  # docker, a --rm container after stop
    assert map_state("created") is State.STOPPED
    assert map_state("paused") is State.STOPPED
    assert map_state("weird") is State.UNKNOWN and map_state(None) is State.UNKNOWN


@pytest.mark.parametrize(
    ("out", "err"), [(PODMAN_LOGS_OUT, PODMAN_LOGS_ERR), (DOCKER_LOGS_OUT, DOCKER_LOGS_ERR)]
)
def test_logs_merged_by_timestamp(out, err):
    assert merge_logs(out, err) == ["out1", "out2", "err1"]


def test_logs_interleaved_and_untimestamped_lines_stay_in_place():
    out = "2026-11-25T14:00:00.1Z a\n2026-11-25T14:00:00.3Z c\nno stamp\n"
    err = "2026-11-25T14:00:00.2Z b\r\n2026-11-25T14:00:00.300000001Z d\n"
    assert merge_logs(out, err) == ["a", "b", "c", "no stamp", "d"]
    assert merge_logs("", "") == []


def test_runtime_kind():
    assert runtime_kind("podman") == "podman"
    assert runtime_kind("/usr/bin/podman") == "podman"
    assert runtime_kind("/usr/local/bin/docker") == "docker"


def launch_of(spec: SessionSpec, **changes) -> Launch:
    values = {"argv": spec.command, "env": dict(spec.env),
              "fingerprint": {"command": "c0ffee", "image": "1mage"}, "overrides": {}}
    values.update(changes)
    return Launch(spec=spec, **values)


PROD = SessionSpec(
    name="astro-prod",
    backend="container",
    command=("python", "-m", "astro.bot"),
    env={"BOT_MODE": "prod"},
    working_dir="/app",
    options=ContainerOptions(image_ref="astro-bot:v2", volumes=("/srv/data:/data:ro",),
                             ports=("8080:80",)),
)


def test_run_argv_carries_the_whole_launch():
    launch = launch_of(PROD, argv=("python", "-m", "astro.bot", "--expanded"),
                       env={"BOT_MODE": "prod", "EXTRA": "1"})
    argv = ContainerBackend("podman").run_argv(launch)
    assert argv[:2] == ["run", "--detach"]
    assert argv[argv.index("--name") + 1] == "astro-prod"
    assert "--pull=never" in argv and "--init" in argv
    assert "--interactive" in argv and "--tty" in argv  # so attach can detach (Ctrl+P Ctrl+Q)
    assert f"{LABEL_SESSION}=astro-prod" in argv
    assert f"{LABEL_FINGERPRINT}={label_value(launch.fingerprint)}" in argv
    assert f"{LABEL_RESTART}=no" in argv and "--restart" not in argv
    assert not any(a.startswith(LABEL_OVERRIDES) for a in argv)  # no overrides: no label
    for flag, value in [
        ("--env", "BOT_MODE=prod"),
        ("--env", "EXTRA=1"),  # the launch's env (config + --env), not only the spec's
        ("--volume", "/srv/data:/data:ro"),
        ("--publish", "8080:80"),
        ("--workdir", "/app"),
    ]:
        assert argv[argv.index(value) - 1] == flag
    # image then the expanded argv, untouched: no shell anywhere
    assert argv[-5:] == ["astro-bot:v2", "python", "-m", "astro.bot", "--expanded"]
    no_init = PROD.with_changes(options=ContainerOptions(image_ref="astro-bot:v2", init=False))
    bare = ContainerBackend("docker").run_argv(launch_of(no_init, argv=()))
    assert "--init" not in bare and bare[-1] == "astro-bot:v2"


def test_run_argv_records_the_overrides_and_the_restart_policy():
    launch = launch_of(PROD.with_changes(restart="on-failure", max_restarts=3),
                       overrides={"image": "astro-bot:v2"})
    argv = ContainerBackend("podman").run_argv(launch)
    assert f"{LABEL_OVERRIDES}={label_value({'image': 'astro-bot:v2'})}" in argv
    assert argv[argv.index("--restart") + 1] == "on-failure:3"
    assert f"{LABEL_RESTART}=on-failure" in argv
    always = ContainerBackend("podman").run_argv(launch_of(PROD.with_changes(restart="always")))
    assert always[always.index("--restart") + 1] == "always"


def test_run_argv_bounds_the_runtimes_own_log():
    podman = ContainerBackend("podman").run_argv(launch_of(PROD))
    assert podman[podman.index("--log-opt") + 1].startswith("max-size=")
    docker = ContainerBackend("docker").run_argv(launch_of(PROD))
    opts = [docker[i + 1] for i, a in enumerate(docker) if a == "--log-opt"]
    assert len(opts) == 2 and opts[1] == "max-file=2"
    unbounded = ContainerBackend("docker").run_argv(launch_of(PROD), log_limit=False)
    assert "--log-opt" not in unbounded
    with_cid = ContainerBackend("docker").run_argv(launch_of(PROD), "/tmp/x/cid")
    assert with_cid[with_cid.index("--cidfile") + 1] == "/tmp/x/cid"


def test_run_argv_needs_an_image():
    with pytest.raises(ValidationError, match="image"):
        ContainerBackend("podman").run_argv(launch_of(SessionSpec(name="x", backend="container")))


def test_constructor_runs_nothing():
    backend = ContainerBackend("/nonexistent/podman")
    assert backend.kind == "container" and backend.scope == "podman"
    assert backend.runner.argv("ps") == ["/nonexistent/podman", "ps"]


def test_the_recorded_start_survives_dockers_label_text():
    """The fingerprint and the overrides are JSON in a label; docker ``ps`` prints labels as
    ``k=v,k=v`` text, so the value must hold neither ``,`` nor ``=``."""
    fingerprint = {"command": "abc", "env": "d,e=f"}
    overrides = {"env": ["A=1,2"], "image": "x:v2"}
    value = label_value(fingerprint)
    assert "," not in value and "=" not in value
    text = (f"other=a,b,{LABEL_SESSION}=s,{LABEL_FINGERPRINT}={value},"
            f"{LABEL_OVERRIDES}={label_value(overrides)}")
    labels = parse_labels(text)
    assert recorded_fingerprint(labels) == {"fp": fingerprint, "ov": overrides}
    assert recorded_fingerprint({LABEL_FINGERPRINT: value}) == {"fp": fingerprint, "ov": {}}
    assert recorded_fingerprint({LABEL_FINGERPRINT: "not-base64-json"}) is None
    assert recorded_fingerprint({}) is None
    line = ('{"Names":"s","State":"running","Status":"Up 1 second","Image":"img","ID":"abc",'
            '"Labels":"' + text + '"}')
    [status] = parse_ps(line, "docker")
    assert status.managed and status.recorded == {"fp": fingerprint, "ov": overrides}


def test_inspect_reads_the_restart_count_and_policy():
    item = load_json_objects(PODMAN_INSPECT)[0]
    item = {**item, "RestartCount": 2,
            "Config": {**item["Config"], "Labels": {LABEL_SESSION: "capz-run",
                                                    LABEL_RESTART: "always"}}}
    status = status_from_inspect(item, "podman")
    assert status.restarts == 2 and status.details["restart"] == "always"
    assert status_from_inspect(load_json_objects(PODMAN_INSPECT)[1], "podman").restarts is None


def test_partial_records_read_as_one_line() -> None:
    # podman's `logs -t` for a line written in pieces (python3 -u prints text, then "\n"):
    # the piece without a newline is followed directly by the next record's stamp.
    stdout = (
        "2026-11-25T14:47:07.229936758Z ready2026-11-25T14:47:07.229936999Z \n"
        "2026-11-25T14:47:08.1Z got2026-11-25T14:47:08.2Z  2026-11-25T14:47:08.3Z x"
        "2026-11-25T14:47:08.4Z \n"
    )
    stderr = "2026-11-25T14:47:07.5Z err\n"
    assert merge_logs(stdout, stderr) == ["ready", "err", "got x"]


# podman's k8s-file log (``HostConfig.LogConfig.Path``), python3 -u writing "line{i}" then "\n"
# in two writes, and one stderr line in between; verbatim apart from the shortened stamps.
K8S_FILE = "".join(record + "\n" for record in (
    "2026-11-25T14:53:51.11+00:00 stdout P line1",
    "2026-11-25T14:53:51.16+00:00 stdout F ",
    "2026-11-25T14:53:51.16+00:00 stdout P line2",
    "2026-11-25T14:53:51.17+00:00 stderr F err1",
    "2026-11-25T14:53:51.21+00:00 stdout F ",
    "2026-11-25T14:53:51.21+00:00 stdout P line3",
    "2026-11-25T14:53:51.26+00:00 stdout P  and more",
    "2026-11-25T14:53:51.27+00:00 stdout F",  # tolerated without the space
    "2026-11-25T14:53:51.28+00:00 stdout F plain\r",
))


def test_k8s_file_lines_join_pieces_in_write_order() -> None:
    assert k8s_file_lines(K8S_FILE) == ["line1", "line2", "err1", "line3 and more", "plain"]


def test_k8s_file_lines_from_the_middle_drop_the_cut_line() -> None:
    middle = K8S_FILE.split("\n", 2)[2]  # starts with line2's first piece... and its end
    assert k8s_file_lines(middle, from_start=False) == ["line3 and more", "plain"]
    # an unfinished line (a prompt without newline) shows as it stands
    assert k8s_file_lines("S stdout P prompt> \n") == ["prompt> "]


def test_tail_k8s_file_reads_back_until_enough_whole_lines(tmp_path) -> None:
    # `podman logs --tail 2` printed these as ["line5", ""]: each piece as a line of its own
    path = tmp_path / "ctr.log"
    path.write_text("".join(
        f"2026-11-25T14:53:51.{i:02}+00:00 stdout P line{i}\n"
        f"2026-11-25T14:53:51.{i:02}+00:00 stdout F \n" for i in range(1, 501)
    ) + "2026-11-25T14:53:52.00+00:00 stdout F half-writ")  # a record being written
    assert tail_k8s_file(str(path), 2, block=64) == ["line499", "line500"]
    assert tail_k8s_file(str(path), 3, block=100_000) == ["line498", "line499", "line500"]
    assert tail_k8s_file(str(path), 1000, block=64) == [f"line{i}" for i in range(1, 501)]
    assert tail_k8s_file(str(tmp_path / "gone.log"), 2) is None


def test_run_argv_keeps_env_values_off_the_command_line(tmp_path):
    """With a folder, values go through a private env file: ``/proc/PID/cmdline`` of the client
    is readable by every local user while it runs."""
    launch = launch_of(PROD, env={"TOKEN": "s3cret=x y", "MULTI": "a\nb"})
    argv = ContainerBackend("podman").run_argv(launch, folder=str(tmp_path))
    path = argv[argv.index("--env-file") + 1]
    assert os.path.dirname(path) == str(tmp_path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert Path(path).read_text() == "TOKEN=s3cret=x y\n"
    assert not any("s3cret" in word for word in argv)
    # a newline cannot be written in an env file: that value alone stays a word
    assert argv[argv.index("MULTI=a\nb") - 1] == "--env"
    # nothing to hide: no file at all
    bare = ContainerBackend("docker").run_argv(launch_of(PROD, env={}), folder=str(tmp_path))
    assert "--env-file" not in bare and "--env" not in bare
