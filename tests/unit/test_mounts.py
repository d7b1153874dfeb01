"""The host mount policy (validation.mount_problem, ContainerType.options, the config loader).

A container sees only what is mounted into it: the system folders, the container engines'
sockets, the user's ssh keys, a relative path that leads out of the project and the dev/suid/U
options are refused unless the entry lists the host path under ``allow_host_mounts``. Real
paths and symlinks in tmp_path; HOME and XDG_RUNTIME_DIR point at private folders.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import voluptuous as vol

from kstlib_tasks import backends
from kstlib_tasks import validation as v
from kstlib_tasks.backends.container import ContainerOptions, mount_problems
from kstlib_tasks.config import load_config
from kstlib_tasks.models import SessionSpec

OPT_IN = "(list the host path under allow_host_mounts: to allow it)"
CONTAINER = backends.get("container")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The config's folder, with HOME (having .ssh) and XDG_RUNTIME_DIR beside it."""
    home = tmp_path / "users" / "me"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    runtime = tmp_path / "run-user"
    (runtime / "podman").mkdir(parents=True)
    (runtime / "podman" / "podman.sock").touch()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    place = tmp_path / "project"
    (place / "data").mkdir(parents=True)
    monkeypatch.chdir(place)
    return place


def problem(volume: str, base: Path, allowed: tuple[str, ...] = ()) -> str | None:
    return v.mount_problem(volume, base_dir=base, allowed=allowed)


# =========================================================================== refused


@pytest.mark.parametrize(
    ("volume", "reason"),
    [
        ("/:/host", "refused host path /: it is the whole host filesystem"),
        ("//:/host", "refused host path '//' (resolves to /): it is the whole host filesystem"),
        ("/etc:/etc:ro", "refused host path /etc: /etc is a system folder"),
        ("/etc/ssl:/ssl:ro", "refused host path /etc/ssl: /etc is a system folder"),
        ("/./etc/:/e", "/etc is a system folder"),
        ("/usr/local:/u", "refused host path /usr/local: /usr is a system folder"),
        ("/proc/1:/p", "/proc is a system folder"),
        ("/sys:/sys", "/sys is a system folder"),
        ("/boot:/boot:ro", "/boot is a system folder"),
        ("/var:/v", "refused host path /var: it contains /var/run, and /var/run is a system "
                    "folder"),
        ("/var/run/docker.sock:/var/run/docker.sock", "refused host path "),
        ("/run/podman/podman.sock:/x", "refused host path "),
    ],
)
def test_system_paths_refused(project: Path, volume: str, reason: str) -> None:
    found = problem(volume, project)
    assert found is not None
    assert reason in found
    assert found.endswith(OPT_IN)


def test_runtime_socket_says_why(project: Path) -> None:
    sock = Path(os.environ["XDG_RUNTIME_DIR"]) / "podman" / "podman.sock"
    assert problem(f"{sock}:/run/podman.sock", project) == (
        f"refused host path {sock}: it is a container engine's socket (full control of the "
        f"engine) {OPT_IN}"
    )
    # the folder holding it too
    assert f"it contains {sock}, and it is a container engine's socket" in str(
        problem(f"{sock.parent}:/x", project))
    docker = problem("/var/run/docker.sock:/x", project)
    assert docker is not None and ("socket" in docker or "system folder" in docker)


def test_dev_option(project: Path) -> None:
    assert problem("/dev:/d:dev,suid,exec", project) == (
        f"option 'dev' lets the container use device files {OPT_IN}"
    )


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ("dev", "option 'dev' lets the container use device files"),
        ("suid", "option 'suid' lets set-user-id programs gain privileges"),
        ("U", "option 'U' changes the owner of the host folder"),
        ("ro,U", "option 'U' changes the owner of the host folder"),
        ("exec,suid", "option 'suid' lets set-user-id programs gain privileges"),
    ],
)
def test_risky_options_on_a_harmless_path(project: Path, options: str, reason: str) -> None:
    assert problem(f"./data:/data:{options}", project) == f"{reason} {OPT_IN}"


@pytest.mark.parametrize("options", ["ro", "rw", "z", "Z", "exec", "nodev,nosuid", "ro,noexec"])
def test_other_options_are_fine(project: Path, options: str) -> None:
    assert problem(f"./data:/data:{options}", project) is None


def test_symlink_to_etc_is_etc(project: Path) -> None:
    (project / "etclink").symlink_to("/etc")
    assert problem("./etclink:/e", project) == (
        f"'./etclink' resolves to /etc, outside the config's folder {OPT_IN}"
    )
    (project / "abs").symlink_to("/etc")
    assert problem(f"{project}/abs:/e", project) == (
        f"refused host path '{project}/abs' (resolves to /etc): /etc is a system folder {OPT_IN}"
    )


def test_relative_path_leading_out_of_the_config_folder(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "out").symlink_to(outside)
    assert problem("out:/o", project) is None  # no '/': a named volume, not the link
    for volume, resolved in (("./out:/o", outside), ("out/sub:/o", outside / "sub"),
                             ("./out/sub/:/o:ro", outside / "sub")):
        host = volume.split(":")[0]
        assert problem(volume, project) == (
            f"{host!r} resolves to {resolved}, outside the config's folder {OPT_IN}"
        )


def test_ssh_keys_refused(project: Path) -> None:
    ssh = Path(os.environ["HOME"]) / ".ssh"
    assert problem("~/.ssh:/root/.ssh:ro", project) == (
        f"refused host path ~/.ssh: it holds your ssh keys {OPT_IN}"
    )
    assert problem(f"{ssh}/id_ed25519:/k", project) == (
        f"refused host path {ssh}/id_ed25519: it holds your ssh keys {OPT_IN}"
    )


@pytest.mark.parametrize("host", ["~", "~/", "HOME", "PARENT"])
def test_a_parent_of_the_ssh_folder_refused(project: Path, host: str) -> None:
    home = Path(os.environ["HOME"])
    host = {"HOME": str(home), "PARENT": str(home.parent)}.get(host, host)
    found = problem(f"{host}:/h", project)
    assert found is not None
    assert found.endswith(f"it contains {home / '.ssh'}, and it holds your ssh keys {OPT_IN}")


def test_a_home_without_ssh_folder_is_fine(project: Path) -> None:
    (Path(os.environ["HOME"]) / ".ssh").rmdir()
    assert problem("~:/h", project) is None


# =========================================================================== fine


@pytest.mark.parametrize(
    "volume",
    [
        "named:/data",
        "my_vol.1:/var/lib/x:ro",
        "named:/data:U",  # a named volume belongs to the engine, not to the host
        "/srv/data:/data",
        "/srv/data:/data:ro,Z",
        "/var/lib/app:/app",
        "/etcetera:/x",  # not /etc
        "/opt/run:/x",
        "./data:/data",
        "data/sub:/x",
        "./:/project",
    ],
)
def test_fine_volumes(project: Path, volume: str) -> None:
    assert problem(volume, project) is None


@pytest.mark.parametrize(
    ("volume", "allowed"),
    [
        ("/etc:/etc:ro", ("/etc",)),
        ("/etc/ssl:/ssl", ("/etc",)),  # under an allowed folder
        ("/:/host", ("/",)),
        ("/dev:/d:dev,suid", ("/dev",)),  # the options come with the opt-in
        ("./data:/data:U", ("/srv", "PROJECT")),
        ("./etclink:/e", ("/etc",)),
        ("~/.ssh:/s:ro", ("~/.ssh",)),
        ("~:/h", ("~/",)),
        ("/var/run/docker.sock:/var/run/docker.sock", ("/var/run/docker.sock",)),
        ("/var/run/docker.sock:/var/run/docker.sock", ("/run/docker.sock",)),  # resolved alike
    ],
)
def test_allowed_by_allow_host_mounts(project: Path, volume: str,
                                      allowed: tuple[str, ...]) -> None:
    (project / "etclink").symlink_to("/etc")
    allowed = tuple(str(project) if a == "PROJECT" else a for a in allowed)
    assert problem(volume, project) is not None
    assert problem(volume, project, allowed) is None


def test_allowing_one_path_does_not_allow_another(project: Path) -> None:
    assert problem("/etc:/etc", project, ("/etc/ssl",)) is not None
    assert problem("/etcetera:/x", project, ("/etc",)) is None
    assert problem("/usr:/u", project, ("/etc",)) is not None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (["etc"], "host path 'etc' must be absolute (or ~/...) without '..'"),
        (["/srv/../etc"], "host path '/srv/../etc' must be absolute (or ~/...) without '..'"),
        (["/etc\n"], "host path '/etc\\n' contains a newline"),
        ({"a": 1}, "expected a list of host paths, got a mapping"),
    ],
)
def test_allow_host_mounts_values(value: object, reason: str) -> None:
    with pytest.raises(vol.Invalid) as info:
        v.host_mounts(value)
    assert info.value.msg == reason
    assert v.host_mounts("/etc") == ("/etc",)
    assert v.host_mounts(["/etc", "~/.ssh"]) == ("/etc", "~/.ssh")


# =========================================================================== the backend


def test_container_options_refuse_every_bad_volume(project: Path) -> None:
    clean = {"image": "busybox", "volumes": ["./data:/data", "/etc:/etc", "/:/h"]}
    assert [(path, reason.split(":")[0]) for path, reason in
            CONTAINER.option_problems(clean, project)] == [
        (["volumes", 1], "refused host path /etc"),
        (["volumes", 2], "refused host path /"),
    ]
    options = CONTAINER.options({**clean, "allow_host_mounts": ("/etc", "/")}, {}, project)
    assert options.volumes == (f"{project}/data:/data", "/etc:/etc", "/:/h")
    assert list(mount_problems(options.volumes, project, ())) == [
        (1, f"refused host path /etc: /etc is a system folder {OPT_IN}"),
        (2, f"refused host path /: it is the whole host filesystem {OPT_IN}"),
    ]


def test_check_points_out_allowed_host_mounts() -> None:
    spec = SessionSpec("c", "container", ("sleep", "9"),
                       options=ContainerOptions(image_ref="img", volumes=("/etc:/etc",),
                                                allow_host_mounts=("/etc",)))
    assert CONTAINER.warnings(spec) == [
        "allow_host_mounts: '/etc' may be mounted although the mount policy would refuse it"
    ]


def _load(project: Path, text: str):
    (project / "kstlib.conf.yml").write_text(textwrap.dedent(text).lstrip("\n"))
    return load_config(warn=False)


def test_config_refuses_the_entry_with_the_line_and_how_to_opt_in(project: Path) -> None:
    (project / "etclink").symlink_to("/etc")
    result = _load(project, """
        ops:
          sessions:
            web:
              backend: container
              image: busybox
              volumes:
                - ./data:/data
                - /etc:/etc:ro
                - ./etclink:/e
            fine:
              backend: container
              image: busybox
              volumes: [named:/n, /srv/data:/d]
        """)
    assert list(result.sessions) == ["fine"]
    assert result.warning_lines() == [
        "kstlib.conf.yml:8: session 'web': volumes[1]: refused host path /etc: /etc is a system "
        f"folder {OPT_IN} (also invalid: volumes[2])",
    ]
    # check lists both refused volumes, each on its line
    assert [result.located(p) for p in result.problems] == [
        "kstlib.conf.yml:8: session 'web': volumes[1]: refused host path /etc: /etc is a system "
        f"folder {OPT_IN}",
        "kstlib.conf.yml:9: session 'web': volumes[2]: './etclink' resolves to /etc, outside "
        f"the config's folder {OPT_IN}",
    ]


def test_config_allow_host_mounts(project: Path) -> None:
    result = _load(project, """
        ops:
          sessions:
            web:
              backend: container
              image: busybox
              volumes: ["/etc:/etc:ro", "~/.ssh:/root/.ssh:ro"]
              allow_host_mounts: [/etc, ~/.ssh]
        """)
    assert result.warning_lines() == []
    options = result.sessions["web"].options
    assert options.allow_host_mounts == ("/etc", "~/.ssh")
    assert options.volumes == ("/etc:/etc:ro", f"{os.environ['HOME']}/.ssh:/root/.ssh:ro")


def test_allow_host_mounts_is_a_container_key(project: Path) -> None:
    result = _load(project, "ops:\n  sessions:\n    t:\n      allow_host_mounts: [/etc]\n")
    assert result.warning_lines() == [
        "kstlib.conf.yml:4: session 't': allow_host_mounts: unknown key for backend 'tmux' (it "
        "is a key of backend 'container')",
    ]


@pytest.mark.parametrize("target", ["/etc", "outside"])
@pytest.mark.parametrize("backend", ["container", "swarm"])
def test_check_looks_at_mounts_again_as_start_does(project: Path, backend: str, target: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Validated while ``./data`` was a folder, then it became a symlink to ``/etc`` or to a
    folder outside the project: what ``check`` reports for the machine names the mount first
    (whatever the engine says: here no runtime is on PATH at all). The stored volume is
    absolute; that it was written relative to the project is kept for this second look."""
    monkeypatch.setenv("PATH", str(project / "data"))

    def one_web(volume: str):
        return _load(project, f"""
            ops:
              swarm: {{docker_host: "unix:///nonexistent/kt-docker.sock"}}
              sessions:
                web:
                  backend: {backend}
                  image: busybox
                  volumes: ["{volume}"]
            """)

    config = one_web("./data:/data")
    spec = config.sessions["web"]
    kind = backends.get(backend)
    assert not [p for p in kind.machine_problems(spec, config) if p.startswith("volumes")]
    elsewhere = project.parent / "elsewhere"
    elsewhere.mkdir()
    (project / "data").rmdir()
    (project / "data").symlink_to("/etc" if target == "/etc" else elsewhere)
    found = kind.machine_problems(spec, config)
    why = f"resolves to {'/etc' if target == '/etc' else elsewhere}, outside the config's folder"
    assert found[0].startswith("volumes[0]: ") and why in found[0], found
    assert len(found) == 2  # and the engine that cannot be reached
    # the same volume written absolute was never bound to the project's folder
    absolute = one_web(f"{project}/data:/data")
    if target == "/etc":
        assert "web" in absolute.invalid  # a system folder, however it is written
    else:
        found = kind.machine_problems(absolute.sessions["web"], absolute)
        assert not [p for p in found if p.startswith("volumes")], found
