"""``kstlib ops export``: what each config value becomes in Kubernetes and Compose, the notes
for what does not map, and determinism (same config, same bytes). No backend is involved:
configs are parsed from text, and the Kubernetes output is checked against the 1.32 schema
offline (kubernetes-validate, strict: no unexpected property).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kstlib_tasks import frontend
from kstlib_tasks.backends.container import ContainerOptions
from kstlib_tasks.config import parse_config
from kstlib_tasks.errors import InvalidSessionError, KstlibError, SessionNotFoundError
from kstlib_tasks.errors import ValidationError as KstlibValidationError
from kstlib_tasks.export import FORMATS, build, export
from kstlib_tasks.models import SessionSpec
from kstlib_tasks.opsconfig import OpsConfig

K8S_VERSION = "1.32.0"
IMAGE = "localhost/kstlib-test-busybox:latest"


def config(tmp_path: Path, text: str) -> OpsConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "kstlib.conf.yml"
    body = textwrap.dedent(text).lstrip("\n")
    path.write_text(body, encoding="utf-8")
    parsed = parse_config(body, path)
    assert not parsed.warnings, parsed.warning_lines()
    return parsed


def k8s(cfg: OpsConfig, *targets: str) -> list[dict[str, Any]]:
    text = build(cfg, "kubernetes", targets).text
    docs = list(yaml.safe_load_all(text))
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    return docs


def compose(cfg: OpsConfig, *targets: str) -> dict[str, Any]:
    doc = yaml.safe_load(build(cfg, "compose", targets).text)
    assert "version" not in doc
    return doc  # type: ignore[no-any-return]


def notes(cfg: OpsConfig, fmt: str, *targets: str) -> tuple[str, ...]:
    return build(cfg, fmt, targets).notes


def container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]


WEB = f"""
ops:
  sessions:
    web:
      backend: container
      image: {IMAGE}
      command: httpd -f -p 8080
      working_dir: /srv
      env: {{ZED: "1", ALPHA: two}}
      ports: ["127.0.0.1:18080:8080", "9000/udp", "18081:8080"]
      description: the web server
      restart: always
"""


# =========================================================================== Kubernetes


def test_a_long_running_session_is_a_deployment(tmp_path: Path) -> None:
    (doc,) = k8s(config(tmp_path, WEB))
    assert doc["apiVersion"] == "apps/v1" and doc["kind"] == "Deployment"
    labels = {"app.kubernetes.io/name": "web", "app.kubernetes.io/managed-by": "kstlib"}
    assert doc["metadata"] == {"name": "web", "labels": labels,
                               "annotations": {"kubernetes.io/description": "the web server"}}
    assert doc["spec"]["replicas"] == 1
    assert doc["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "web"}}
    assert doc["spec"]["template"]["metadata"]["labels"] == labels
    assert pod(doc)["restartPolicy"] == "Always"
    assert pod(doc)["shareProcessNamespace"] is True  # init: true (the default)
    c = container(doc)
    assert c["name"] == "web" and c["image"] == IMAGE
    assert c["imagePullPolicy"] == "IfNotPresent"
    # args, not command: the image's ENTRYPOINT stays, as with `podman run IMAGE ARGV`
    assert "command" not in c and c["args"] == ["httpd", "-f", "-p", "8080"]
    assert c["workingDir"] == "/srv"
    assert c["env"] == [{"name": "ALPHA", "value": "two"}, {"name": "ZED", "value": "1"}]
    # one containerPort per (port, protocol): 8080 is published twice on the host
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"},
                          {"containerPort": 9000, "protocol": "UDP"}]
    assert c["stdin"] is True and c["tty"] is True


def test_the_host_side_of_ports_is_a_note(tmp_path: Path) -> None:
    found = notes(config(tmp_path, WEB), "kubernetes")
    assert ("session 'web': ports 127.0.0.1:18080:8080, 18081:8080: only the container ports "
            "are declared; publish them with a Service (or kubectl port-forward)") in found
    assert not [n for n in found if "restart" in n]  # restart: always is a Deployment's own


def test_no_command_keeps_the_images_and_init_false_shares_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            bare: {{backend: container, image: {IMAGE}, init: false, restart: always}}
        """)
    (doc,) = k8s(cfg)
    assert "args" not in container(doc) and "command" not in container(doc)
    assert "shareProcessNamespace" not in pod(doc)
    assert "command" not in compose(cfg)["services"]["bare"]
    assert "init" not in compose(cfg)["services"]["bare"]


@pytest.mark.parametrize(("restart", "extra", "note"), [
    ("no", "", "restart: no has no Deployment equivalent"),
    ("on-failure", "max_restarts: 3", "restart: on-failure (max_restarts 3) has no Deployment "
                                      "equivalent"),
])
def test_deployments_always_restart_and_say_so(tmp_path: Path, restart: str, extra: str,
                                               note: str) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            svc:
              backend: container
              image: {IMAGE}
              restart: "{restart}"
              {extra}
        """)
    (doc,) = k8s(cfg)
    assert doc["kind"] == "Deployment" and pod(doc)["restartPolicy"] == "Always"
    assert (f"session 'svc': {note}: its pod restarts whenever it ends (restartPolicy: "
            "Always)") in notes(cfg, "kubernetes")


STACK = f"""
ops:
  sessions:
    db:
      backend: container
      image: {IMAGE}
      command: sleep 1000
      ready: {{tcp: 5432}}
      ports: ["127.0.0.1:15432:5432"]
      restart: always
      groups: [data]
    migrate:
      backend: container
      image: {IMAGE}
      command: echo migrated
      depends_on: {{db: ready}}
    api:
      backend: container
      image: {IMAGE}
      command: sleep 1000
      depends_on: {{migrate: completed, db: started}}
      ready: {{http: "http://localhost:18080/health?deep=1", timeout: 20}}
      ports: ["18080:80"]
      restart: always
      groups: [web]
    dev:
      command: sleep 1000
      groups: [web]
    worker:
      backend: container
      image: {IMAGE}
      command: sleep 1000
      depends_on: [api, dev]
      restart: on-failure
      max_restarts: 2
    lone:
      backend: container
      image: {IMAGE}
      restart: always
"""


def test_a_completion_step_is_a_job(tmp_path: Path) -> None:
    docs = k8s(config(tmp_path, STACK), "migrate")
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Deployment", "db"), ("Job", "migrate")]
    job = docs[1]
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["backoffLimit"] == 0
    assert pod(job)["restartPolicy"] == "Never"
    assert container(job)["args"] == ["echo", "migrated"]


def test_a_completion_step_with_on_failure_retries_max_restarts_times(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            step: {{backend: container, image: {IMAGE}, restart: on-failure, max_restarts: 4}}
            after: {{backend: container, image: {IMAGE}, depends_on: {{step: completed}}}}
        """)
    job = k8s(cfg)[0]
    assert job["kind"] == "Job" and job["spec"]["backoffLimit"] == 4
    assert pod(job)["restartPolicy"] == "OnFailure"


def test_targets_bring_their_dependencies_in_up_order(tmp_path: Path) -> None:
    cfg = config(tmp_path, STACK)
    assert build(cfg, "kubernetes", ["worker"]).sessions == ("db", "migrate", "api", "worker")
    assert build(cfg, "compose", ["data"]).sessions == ("db",)  # a group
    assert build(cfg, "compose", []).sessions == ("db", "migrate", "api", "worker", "lone")
    with pytest.raises(SessionNotFoundError, match=r"no session or group named 'wrker'.*"
                                                   "did you mean 'worker'"):
        build(cfg, "compose", ["wrker"])


def test_tmux_sessions_are_skipped_with_a_note_and_edges_to_them_dropped(tmp_path: Path) -> None:
    cfg = config(tmp_path, STACK)
    found = notes(cfg, "kubernetes", "web")
    assert found[0] == ("session 'dev' (tmux) is not exported: only container sessions run on "
                        "Kubernetes/Compose")
    assert "dev" not in build(cfg, "compose", ["web"]).sessions
    found = notes(cfg, "compose", "worker")
    assert ("session 'worker': depends_on 'dev' (ready) is dropped: 'dev' (tmux) is not "
            "exported") in found
    assert compose(cfg, "worker")["services"]["worker"]["depends_on"] == {
        "api": {"condition": "service_healthy"}}


def test_nothing_to_export_is_an_error(tmp_path: Path) -> None:
    cfg = config(tmp_path, STACK)
    with pytest.raises(KstlibError, match=r"nothing to export: .*\(skipped: dev \(tmux\)\)"):
        build(cfg, "kubernetes", ["dev"])


def test_an_invalid_target_says_why(tmp_path: Path) -> None:
    path = tmp_path / "kstlib.conf.yml"
    body = f"ops:\n  sessions:\n    bad: {{backend: container, image: {IMAGE}, ports: [0]}}\n"
    path.write_text(body)
    with pytest.raises(InvalidSessionError, match="ports"):
        build(parse_config(body, path), "kubernetes", ["bad"])


def test_probes_become_readiness_probes_on_container_ports(tmp_path: Path) -> None:
    docs = {d["metadata"]["name"]: d for d in k8s(config(tmp_path, STACK))}
    assert container(docs["db"])["readinessProbe"] == {
        "tcpSocket": {"port": 5432}, "periodSeconds": 1, "timeoutSeconds": 1}
    assert container(docs["api"])["readinessProbe"] == {
        "httpGet": {"path": "/health?deep=1", "port": 80, "scheme": "HTTP"},
        "periodSeconds": 1, "timeoutSeconds": 1}
    assert "readinessProbe" not in container(docs["worker"])


def test_exec_delay_log_and_remote_probes(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            ex:
              backend: container
              image: {IMAGE}
              env: {{FILE: /tmp/ready}}
              ready: {{exec: "test -e $FILE", interval: 1}}
            dl: {{backend: container, image: {IMAGE}, ready: {{delay: 2.5}}}}
            lg: {{backend: container, image: {IMAGE}, ready: {{log: "listening"}}}}
            rm: {{backend: container, image: {IMAGE}, ready: {{tcp: "db.internal:5432"}}}}
            hs: {{backend: container, image: {IMAGE}, ready: {{http: "https://127.0.0.1/"}}}}
            un: {{backend: container, image: {IMAGE}, ready: {{tcp: 7000}}}}
        """)
    docs = {d["metadata"]["name"]: container(d).get("readinessProbe") for d in k8s(cfg)}
    assert docs["ex"] == {"exec": {"command": ["test", "-e", "/tmp/ready"]},
                          "periodSeconds": 1, "timeoutSeconds": 1}
    assert docs["dl"] == {"exec": {"command": ["true"]}, "initialDelaySeconds": 3,
                          "periodSeconds": 1, "timeoutSeconds": 1}
    assert docs["lg"] is None
    assert docs["rm"]["tcpSocket"] == {"host": "db.internal", "port": 5432}
    assert docs["hs"]["httpGet"] == {"path": "/", "port": 443, "scheme": "HTTPS"}
    assert docs["un"]["tcpSocket"] == {"port": 7000}
    found = notes(cfg, "kubernetes")
    assert ("session 'lg': ready: log /listening/ has no equivalent (a probe cannot read the "
            "output): the session counts as ready once started") in found
    assert ("session 'un': ready: port 7000 is not in ports: (as a host or a container port): "
            "probed as container port 7000") in found
    assert any(n.startswith("session 'dl': ready: delay 2.5s becomes a readinessProbe") for n
               in found)


def test_volumes_host_paths_named_volumes_and_options(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            vol:
              backend: container
              image: {IMAGE}
              volumes: ["./data:/data:ro", "cache:/cache", "./data:/z:z"]
        """)
    (doc,) = k8s(cfg)
    assert pod(doc)["volumes"] == [
        {"name": "volume-0", "hostPath": {"path": str(tmp_path / "data")}},
        {"name": "volume-1", "emptyDir": {}},
        {"name": "volume-2", "hostPath": {"path": str(tmp_path / "data")}}]
    assert container(doc)["volumeMounts"] == [
        {"name": "volume-0", "mountPath": "/data", "readOnly": True},
        {"name": "volume-1", "mountPath": "/cache"},
        {"name": "volume-2", "mountPath": "/z"}]
    found = notes(cfg, "kubernetes")
    assert any(n.startswith("session 'vol': named volume 'cache' becomes an emptyDir") for n
               in found)
    assert ("session 'vol': volume './data:/z:z': option z has no Kubernetes equivalent "
            "(skipped)").replace("./data", str(tmp_path / "data")) in found
    service = compose(cfg)["services"]["vol"]
    assert service["volumes"] == [f"{tmp_path}/data:/data:ro", "cache:/cache",
                                  f"{tmp_path}/data:/z:z"]
    assert compose(cfg)["volumes"] == {"cache": {"name": "cache"}}


def test_a_mount_refused_by_now_is_skipped_with_its_reason(tmp_path: Path) -> None:
    """The policy is checked again at export, as at start: a symlink may have moved."""
    (tmp_path / "data").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "data")
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            vol: {{backend: container, image: {IMAGE}, volumes: ["./link:/data"]}}
        """)
    link.unlink()
    link.symlink_to("/etc")
    (doc,) = k8s(cfg)
    assert "volumes" not in pod(doc) and "volumeMounts" not in container(doc)
    found = notes(cfg, "compose")
    assert any(n.startswith(f"session 'vol': volume '{link}:/data' is skipped: '{link}' "
                            "resolves to /etc, outside the config's folder") for n in found), found
    assert "volumes" not in compose(cfg)["services"]["vol"]


def test_allow_host_mounts_lets_a_system_folder_through(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            etc:
              backend: container
              image: {IMAGE}
              volumes: ["/etc/hostname:/host-name:ro"]
              allow_host_mounts: [/etc/hostname]
        """)
    (doc,) = k8s(cfg)
    assert pod(doc)["volumes"] == [{"name": "volume-0", "hostPath": {"path": "/etc/hostname"}}]


def test_names_are_lower_cased_and_must_stay_distinct(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            Web-API: {{backend: container, image: {IMAGE}, restart: always}}
            Worker: {{backend: container, image: {IMAGE}, depends_on: [Web-API]}}
        """)
    docs = k8s(cfg)
    assert [d["metadata"]["name"] for d in docs] == ["web-api", "worker"]
    assert container(docs[0])["name"] == "web-api"
    assert list(compose(cfg)["services"]) == ["web-api", "worker"]
    assert compose(cfg)["services"]["worker"]["depends_on"] == {
        "web-api": {"condition": "service_started"}}
    assert ("session 'Web-API': named 'web-api' in the output (names are lower-cased for "
            "Kubernetes and Compose alike)") in notes(cfg, "compose")
    clash = config(tmp_path, f"""
        ops:
          sessions:
            web: {{backend: container, image: {IMAGE}}}
            WEB: {{backend: container, image: {IMAGE}}}
        """)
    for fmt in FORMATS:
        with pytest.raises(KstlibError, match="sessions 'web' and 'WEB' would both be named "
                                              "'web'"):
            build(clash, fmt, [])


def test_names_that_cannot_be_dns_labels_are_refused_for_kubernetes(tmp_path: Path) -> None:
    long = "a" * 64
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            dash-: {{backend: container, image: {IMAGE}}}
            {long}: {{backend: container, image: {IMAGE}}}
        """)
    with pytest.raises(KstlibError, match="session 'dash-': cannot be a Kubernetes name "
                                          r"\(it must end with a letter or a digit\)"):
        build(cfg, "kubernetes", ["dash-"])
    with pytest.raises(KstlibError, match="longer than 63 characters"):
        build(cfg, "kubernetes", [long])
    assert build(cfg, "compose", ["dash-"]).sessions == ("dash-",)


def test_variables_come_from_the_config_env_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FROM_CALLER", "caller")
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            v:
              backend: container
              image: {IMAGE}
              env: {{NAME: world}}
              command: echo $NAME ${{PORT:-8765}} $$literal ${{FROM_CALLER:-default}}
        """)
    assert container(k8s(cfg)[0])["args"] == ["echo", "world", "8765", "$literal", "default"]
    unset = config(tmp_path, f"""
        ops:
          sessions:
            v: {{backend: container, image: {IMAGE}, command: echo $FROM_CALLER}}
        """)
    with pytest.raises(KstlibValidationError, match=r"session 'v': command: variable "
                       r"\$FROM_CALLER is not set in the config's env"):
        build(unset, "compose", [])


def test_kubernetes_escapes_its_own_expansion(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            v:
              backend: container
              image: {IMAGE}
              env: {{A: "$(B) $$ $x $"}}
              command: ["echo", "$$$$", "$$1"]
        """)
    c = container(k8s(cfg)[0])
    # only a $ before $ or ( is doubled: Kubernetes keeps any other $ as it is (and podman
    # kube play, which expands nothing, then shows the value as written)
    assert c["env"] == [{"name": "A", "value": "$$(B) $$$ $x $"}]
    assert c["args"] == ["echo", "$$$", "$1"]  # "$$" as written: $$ -> $, then "$" kept


def test_replicas_come_from_the_options_when_they_have_them(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class SwarmOptions(ContainerOptions):
        replicas: int = 3

    spec = SessionSpec("svc", "container", ("sleep", "9"), restart="always",
                       options=SwarmOptions(image_ref=IMAGE))
    cfg = OpsConfig(path=tmp_path / "kstlib.conf.yml", base_dir=tmp_path,
                    sessions={"svc": spec})
    assert k8s(cfg)[0]["spec"]["replicas"] == 3
    assert compose(cfg)["services"]["svc"]["deploy"] == {"replicas": 3}
    plain = OpsConfig(base_dir=tmp_path, sessions={"svc": SessionSpec(
        "svc", "container", (), options=ContainerOptions(image_ref=IMAGE))})
    assert "deploy" not in compose(plain)["services"]["svc"]


def test_env_files_are_written_in_clear_and_say_so(tmp_path: Path) -> None:
    (tmp_path / "secret.env").write_text("TOKEN=s3cret\n")
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            s: {{backend: container, image: {IMAGE}, env_file: secret.env}}
        """)
    assert container(k8s(cfg)[0])["env"] == [{"name": "TOKEN", "value": "s3cret"}]
    assert any("env_file included, is written into the output in clear text" in n
               for n in notes(cfg, "kubernetes"))


# =========================================================================== Compose


def test_compose_services(tmp_path: Path) -> None:
    text = build(config(tmp_path, STACK), "compose", []).text
    doc = yaml.safe_load(text)
    assert list(doc) == ["services"]
    db, migrate, api, worker = (doc["services"][n] for n in ("db", "migrate", "api", "worker"))
    assert db["image"] == IMAGE and db["command"] == ["sleep", "1000"]
    assert db["ports"] == ["127.0.0.1:15432:5432"]
    assert db["init"] is True and db["tty"] is True and db["stdin_open"] is True
    assert db["restart"] == "always"
    assert migrate["restart"] == "no"
    assert re.search(r"^    restart: 'no'$", text, re.M)  # quoted: YAML 1.1 reads no as false
    assert worker["restart"] == "on-failure:2"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert api["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                 "db": {"condition": "service_started"}}
    assert worker["depends_on"] == {"api": {"condition": "service_healthy"}}


def test_compose_ready_without_a_healthcheck_waits_for_the_start(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            plain: {{backend: container, image: {IMAGE}}}
            logged: {{backend: container, image: {IMAGE}, ready: {{log: up}}}}
            after:
              backend: container
              image: {IMAGE}
              depends_on: {{plain: ready, logged: ready}}
        """)
    services = compose(cfg)["services"]
    assert "healthcheck" not in services["logged"]
    assert services["after"]["depends_on"] == {"plain": {"condition": "service_started"},
                                               "logged": {"condition": "service_started"}}


def test_compose_healthchecks(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            tcp: {{backend: container, image: {IMAGE}, ports: ["18080:80"],
                   ready: {{tcp: 18080, timeout: 30}}}}
            http: {{backend: container, image: {IMAGE},
                    ready: {{http: "http://127.0.0.1:8080/health", timeout: 12.5}}}}
            https: {{backend: container, image: {IMAGE}, ready: {{http: "https://localhost/"}}}}
            ex: {{backend: container, image: {IMAGE}, ready: {{exec: "test -e /tmp/x"}}}}
            dl: {{backend: container, image: {IMAGE}, ready: {{delay: 0.5}}}}
        """)
    services = compose(cfg)["services"]
    tcp = services["tcp"]["healthcheck"]
    assert tcp["test"][0] == "CMD-SHELL"
    script = tcp["test"][1]
    assert 'python3 -c \'import socket; socket.create_connection(("127.0.0.1", 80), 1)' in script
    assert "nc -w 1 127.0.0.1 80 -e true" in script and "/dev/tcp/127.0.0.1/80" in script
    assert script.endswith(" || exit 1")  # unhealthy is 1, not 127 when no bash is there
    assert {k: tcp[k] for k in ("interval", "timeout", "retries")} == {
        "interval": "1s", "timeout": "1s", "retries": 30}
    http = services["http"]["healthcheck"]
    assert "curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:8080/health" in http["test"][1]
    assert "| nc -w 1 127.0.0.1 8080" in http["test"][1]
    assert http["retries"] == 13
    https = services["https"]["healthcheck"]["test"][1]
    assert "ssl.CERT_NONE" in https and "curl -fsS -k" in https and "| nc" not in https
    assert services["ex"]["healthcheck"]["test"] == ["CMD", "test", "-e", "/tmp/x"]
    assert services["dl"]["healthcheck"] == {"test": ["CMD", "true"], "interval": "500ms",
                                             "timeout": "1s", "retries": 120}


def test_compose_escapes_every_dollar(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"""
        ops:
          sessions:
            v:
              backend: container
              image: {IMAGE}
              env: {{A: "x$y ${{z}}"}}
              command: ["echo", "$$HOME", "$$1"]
              ready: {{exec: ["test", "$$x"]}}
        """)
    service = compose(cfg)["services"]["v"]
    assert service["environment"] == {"A": "x$$y $${z}"}
    assert service["command"] == ["echo", "$$HOME", "$$1"]
    assert service["healthcheck"]["test"] == ["CMD", "test", "$$x"]


# =========================================================================== scripts run


def test_the_http_healthcheck_script_runs_with_python() -> None:
    """The python3 step of the script, run here against a real server: <400 passes."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204 if self.path == "/ok" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        from kstlib_tasks.export.compose import http_script
        from kstlib_tasks.export.plan import Check

        def runs(path: str) -> int:
            script = http_script(Check("http", port=port, path=path))
            first = script.split(" 2>/dev/null || ")[0]  # the python3 step alone
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
            return subprocess.run(["sh", "-c", first.replace("python3 ", f"{sys.executable} ",
                                                              1)],
                                  env=env, timeout=30).returncode

        assert runs("/ok") == 0
        assert runs("/missing") == 1
    finally:
        server.shutdown()


# =========================================================================== determinism


def test_same_config_same_bytes_whoever_runs_it(tmp_path: Path) -> None:
    body = textwrap.dedent(STACK).lstrip("\n")
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(body)
    code = ("import sys; from pathlib import Path; from kstlib_tasks.config import parse_config;"
            "from kstlib_tasks.export import build; p = Path(sys.argv[1]);"
            "c = parse_config(p.read_text(), p);"
            "sys.stdout.write(build(c, 'kubernetes', []).text + build(c, 'compose', []).text)")
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "API_PORT": seed, "HOME": f"/tmp/{seed}"}
        done = subprocess.run([sys.executable, "-c", code, str(path)], env=env,
                              capture_output=True, text=True, timeout=60, check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    cfg = config(tmp_path, STACK)
    assert outputs == {build(cfg, "kubernetes", []).text + build(cfg, "compose", []).text}


def test_env_order_in_the_config_does_not_matter(tmp_path: Path) -> None:
    one = config(tmp_path / "one", f"""
        ops:
          sessions:
            s: {{backend: container, image: {IMAGE}, env: {{A: "1", B: "2"}}}}
        """)
    two = config(tmp_path / "two", f"""
        ops:
          sessions:
            s: {{backend: container, image: {IMAGE}, env: {{B: "2", A: "1"}}}}
        """)
    for fmt in FORMATS:
        assert build(one, fmt, []).text == build(two, fmt, []).text


def test_kubernetes_output_is_a_multi_document_stream_with_a_header(tmp_path: Path) -> None:
    text = build(config(tmp_path, STACK), "kubernetes", []).text
    assert text.startswith("# Generated by `kstlib ops export --format kubernetes`")
    assert text.count("\n---\n") == 5  # one explicit start per document (5 container sessions)


# =========================================================================== escaping, fuzzed

VALUE = st.text(alphabet=st.sampled_from("$(){}ab 1\"'\\:#"), max_size=12)


def _k8s_expand(text: str) -> str:
    """Kubernetes' own expansion (third_party/forked/golang/expansion), for env without refs."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:  # a reference to an undefined name stays as written
                    out.append(text[i:end + 1])
                    i = end + 1
                    continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


@settings(max_examples=150, deadline=None)
@given(value=VALUE)
def test_env_values_arrive_as_written(value: str) -> None:
    spec = SessionSpec("s", "container", (), env={"V": value},
                       options=ContainerOptions(image_ref=IMAGE))
    cfg = OpsConfig(base_dir=Path("/tmp"), sessions={"s": spec})
    (doc,) = yaml.safe_load_all(export(cfg, "kubernetes"))
    assert _k8s_expand(container(doc)["env"][0]["value"]) == value
    shown = yaml.safe_load(export(cfg, "compose"))["services"]["s"]["environment"]["V"]
    assert shown.replace("$$", "$") == value and "$" not in shown.replace("$$", "")


# =========================================================================== the verb


def run(tmp_path: Path, monkeypatch, capsys, args: dict[str, Any]) -> tuple[int, str, str]:
    path = tmp_path / "kstlib.conf.yml"
    if not path.exists():
        path.write_text(textwrap.dedent(STACK).lstrip("\n"))
    monkeypatch.chdir(tmp_path)
    front = frontend.Front(frontend.ConfigSource(str(path)))
    code = frontend.run_verb(front, "export", {"names": [], "format": None, "output": None,
                                                **args})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_verb_prints_to_stdout_and_notes_to_stderr(tmp_path: Path, monkeypatch, capsys) -> None:
    code, out, err = run(tmp_path, monkeypatch, capsys, {"format": "compose", "names": ["web"]})
    assert code == 0
    assert yaml.safe_load(out)["services"].keys() == {"db", "migrate", "api"}
    assert err.splitlines()[0] == ("note: session 'dev' (tmux) is not exported: only container "
                                   "sessions run on Kubernetes/Compose")


def test_verb_writes_the_file_with_mode_0644(tmp_path: Path, monkeypatch, capsys) -> None:
    target = tmp_path / "out.yml"
    target.write_text("old")
    target.chmod(0o600)
    old = os.umask(0o077)
    try:
        code, out, err = run(tmp_path, monkeypatch, capsys,
                             {"format": "kubernetes", "output": "out.yml"})
    finally:
        os.umask(old)
    assert code == 0 and out == ""
    assert target.stat().st_mode & 0o777 == 0o644
    assert len(list(yaml.safe_load_all(target.read_text()))) == 5
    assert "wrote out.yml (5 sessions: db, migrate, api, worker, lone)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kstlib.conf.yml", "out.yml"]


def test_verb_format_is_required_and_checked(tmp_path: Path, monkeypatch, capsys) -> None:
    code, out, err = run(tmp_path, monkeypatch, capsys, {})
    assert code == 2 and out == ""
    assert err.strip() == ("option --format is required: kubernetes or compose (see: kstlib ops "
                           "export --help)")
    code, _, err = run(tmp_path, monkeypatch, capsys, {"format": "kubernets"})
    assert code == 2
    assert err.strip() == "format: unknown export format 'kubernets' (did you mean 'kubernetes'?)"
    code, _, err = run(tmp_path, monkeypatch, capsys, {"format": "helm"})
    assert err.strip() == "format: unknown export format 'helm' (expected 'kubernetes' or " \
                          "'compose')"


def test_verb_cannot_write_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    code, out, err = run(tmp_path, monkeypatch, capsys,
                         {"format": "compose", "output": str(tmp_path / "no" / "x.yml")})
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1] == (f"cannot write {tmp_path}/no/x.yml: No such file "
                                            "or directory")


def test_the_kstlib_parser_knows_the_verb() -> None:
    from kstlib_tasks import cli

    parsed = cli.parse(["ops", "export", "-F", "compose", "api", "worker", "-o", "c.yml"])
    assert parsed.verb == "export"
    assert parsed.args == {"format": "compose", "output": "c.yml", "names": ["api", "worker"]}
