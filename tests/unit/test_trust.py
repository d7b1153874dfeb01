"""trust: a config file someone else could have written is refused (exit 2) unless opted in.

Real files and folders in tmp_path (private: pytest makes its folders 0700); ownership changes
need root (the CI runs the unit tests as root), otherwise those tests skip.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from kstlib_tasks import trust
from kstlib_tasks.config import load_config
from kstlib_tasks.errors import USAGE, ConfigError

NAME = "kstlib.conf.yml"
OTHER = 65534  # nobody
TEXT = "ops:\n  sessions:\n    web: {command: sleep 60}\n"

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")


def folder(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)  # mkdir's mode goes through the umask and drops the sticky bit
    return path


def config_in(place: Path, name: str = NAME) -> Path:
    path = place / name
    path.write_text(TEXT)
    path.chmod(0o644)
    return path


def refusal(path: Path | str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, warn=False)
    err = info.value
    line = str(err)
    assert "\n" not in line
    assert f"config file '{path}' is not trusted: " in line
    assert f"KSTLIB_TRUST_CONFIG={path}" in line
    assert err.exit_code == USAGE == 2
    return err


def loads(path: Path | str) -> bool:
    return "web" in load_config(path, warn=False).sessions


@pytest.fixture
def private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(trust.TRUST_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    return folder(tmp_path / "private")


# =========================================================================== trusted


def test_own_file_in_a_private_folder_is_fine(private: Path) -> None:
    path = config_in(private)
    assert trust.problem(path) is None
    assert loads(path)


def test_sticky_world_writable_folder_is_fine(private: Path) -> None:
    sticky = folder(private / "tmp", 0o1777)  # as /tmp: only a file's owner may replace it
    path = config_in(sticky)
    assert trust.problem(path) is None
    assert loads(path)


@needs_root
def test_a_root_owned_file_is_fine_for_everyone(private: Path) -> None:
    path = config_in(private)
    os.chown(path, 0, 0)
    assert trust.problem(path) is None


# =========================================================================== refused


@needs_root
def test_file_owned_by_another_user(private: Path) -> None:
    path = config_in(private)
    os.chown(path, OTHER, OTHER)
    err = refusal(path)
    assert f"it is owned by user {pwd.getpwuid(OTHER).pw_name!r}" in str(err)


@needs_root
def test_folder_owned_by_another_user(private: Path) -> None:
    theirs = folder(private / "theirs", 0o755)
    path = config_in(theirs)
    os.chown(theirs, OTHER, OTHER)
    assert f"its folder {theirs} is owned by user" in str(refusal(path))


@pytest.mark.parametrize("mode", [0o666, 0o646, 0o777])
def test_file_writable_by_everyone(private: Path, mode: int) -> None:
    path = config_in(private)
    path.chmod(mode)
    assert f"it is writable by everyone (mode {mode:04o})" in str(refusal(path))


def test_group_writable_file_is_the_owners_business(private: Path) -> None:
    path = config_in(private)
    path.chmod(0o664)
    assert loads(path)


@pytest.mark.parametrize("depth", [0, 2])
def test_world_writable_folder_without_sticky_bit(private: Path, depth: int) -> None:
    open_folder = folder(private / "open", 0o777)
    place = folder(open_folder.joinpath(*["sub"] * depth)) if depth else open_folder
    path = config_in(place)
    assert f"folder {open_folder} is writable by everyone without the sticky bit (mode 0777)" in (
        str(refusal(path))
    )


def test_found_by_the_upward_search_is_checked_too(private: Path, monkeypatch) -> None:
    open_folder = folder(private / "open", 0o777)
    config_in(open_folder)
    monkeypatch.chdir(folder(open_folder / "deep"))
    with pytest.raises(ConfigError, match=r"is not trusted: folder .* without the sticky bit"):
        load_config(warn=False)


def test_named_by_env_var_is_checked_too(private: Path, monkeypatch) -> None:
    path = config_in(private)
    path.chmod(0o666)
    monkeypatch.setenv("KSTLIB_CONFIG", str(path))
    with pytest.raises(ConfigError, match="is not trusted: it is writable by everyone"):
        load_config(warn=False)


def test_symlink_from_world_writable_folder_to_a_good_file(private: Path, monkeypatch) -> None:
    good = config_in(private)
    open_folder = folder(private / "open", 0o777)
    link = open_folder / NAME
    link.symlink_to(good)
    assert trust.problem(good) is None
    # anyone could replace the link: refused however it is reached
    refusal(link)
    monkeypatch.setenv("KSTLIB_CONFIG", str(link))
    with pytest.raises(ConfigError, match="is not trusted"):
        load_config(warn=False)
    monkeypatch.delenv("KSTLIB_CONFIG")
    monkeypatch.chdir(open_folder)
    with pytest.raises(ConfigError, match="is not trusted"):
        load_config(warn=False)


def test_good_symlink_to_a_file_in_a_world_writable_folder(private: Path) -> None:
    open_folder = folder(private / "open", 0o777)
    target = config_in(open_folder, "real.yml")
    link = private / NAME
    link.symlink_to(target)
    assert "without the sticky bit" in str(refusal(link))


def test_message_is_one_line_naming_file_and_variable(private: Path) -> None:
    path = config_in(private)
    path.chmod(0o666)
    assert str(refusal(path)) == (
        f"config file '{path}' is not trusted: it is writable by everyone (mode 0666) (fix its "
        f"owner or mode, or trust it explicitly: KSTLIB_TRUST_CONFIG={path})"
    )


# =========================================================================== opt-in


def test_trust_variable_file_form(private: Path, monkeypatch) -> None:
    path = config_in(private)
    path.chmod(0o666)
    monkeypatch.setenv(trust.TRUST_VAR, str(path))
    assert loads(path)
    other = config_in(private, "other.yml")
    other.chmod(0o666)
    refusal(other)  # only the file named


def test_trust_variable_folder_form_and_list(private: Path, monkeypatch) -> None:
    open_folder = folder(private / "open", 0o777)
    path = config_in(folder(open_folder / "deep"))
    sibling = folder(private / "open2", 0o777)  # same prefix, not under the trusted folder
    outside = config_in(sibling)
    monkeypatch.setenv(trust.TRUST_VAR, f"/nonexistent{os.pathsep}{open_folder}/")
    assert loads(path)
    refusal(outside)
    monkeypatch.setenv(trust.TRUST_VAR, f"{os.pathsep}{sibling}{os.pathsep}")
    assert loads(outside)


@needs_root
def test_trust_variable_covers_a_foreign_owner(private: Path, monkeypatch) -> None:
    path = config_in(private)
    os.chown(path, OTHER, OTHER)
    monkeypatch.setenv(trust.TRUST_VAR, str(private))
    assert loads(path)


def test_an_empty_trust_variable_trusts_nothing(private: Path, monkeypatch) -> None:
    path = config_in(private)
    path.chmod(0o666)
    monkeypatch.setenv(trust.TRUST_VAR, "")
    refusal(path)


def test_an_env_file_is_held_to_the_same_rules(tmp_path: Path, monkeypatch) -> None:
    """An env file can set PATH: one anybody could write refuses its session, not the file."""
    monkeypatch.delenv("KSTLIB_TRUST_CONFIG", raising=False)
    project = folder(tmp_path / "project")
    (project / NAME).write_text("ops:\n  sessions:\n"
                                "    web: {command: sleep 60, env_file: shared.env}\n"
                                "    other: {command: sleep 60}\n")
    shared = project / "shared.env"
    shared.write_text("PATH=/tmp/evil\n")
    shared.chmod(0o666)
    config = load_config(project / NAME, warn=False)
    assert list(config.sessions) == ["other"]
    (line,) = config.warning_lines()
    assert "session 'web': env_file: env file " in line and "writable by everyone" in line
    monkeypatch.setenv("KSTLIB_TRUST_CONFIG", str(shared))  # the caller's opt-in works here too
    assert list(load_config(project / NAME, warn=False).sessions) == ["web", "other"]
