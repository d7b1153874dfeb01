"""The validated-config cache: used only for the very same bytes, env files, code and path.

Entries are signed (HMAC-SHA256 under a per-user secret in the state folder) and kept in a
folder only the user can write; anything else is a miss, never an error. Real files in the
private folders the conftest gives every test (XDG_CACHE_HOME, XDG_STATE_HOME).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import zlib
from pathlib import Path

import pytest

from kstlib_tasks import config_cache, config_parser, logstore
from kstlib_tasks.config import load_config
from kstlib_tasks.models import ProbeSpec

CONFIG = """ops:
  sessions:
    astro-dev:
      command: "python3 -m astro.bot --mode dev"
      env: {BOT_MODE: dev, PORT: 8080, TOKEN: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
      env_file: app.env
      ready: {tcp: 8080, timeout: 5}
      groups: [bots]
      restart: on-failure
      max_restarts: 3
      description: The bot, dev mode
    astro-prod:
      backend: container
      image: astro-bot:v2
      volumes: ["./data:/data:ro"]
      ports: ["8080:80"]
      depends_on: {astro-dev: started}
    bad-one:
      backend: container
      image: UPPER/x
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "kstlib.conf.yml").write_text(CONFIG)
    (tmp_path / "app.env").write_text("SECRET=one\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "kstlib.conf.yml"


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = config_parser.parse_config

    def counting(text: str, path: Path):
        calls.append(path)
        return real(text, path)

    monkeypatch.setattr(config_parser, "parse_config", counting)
    return calls


def _entry_file() -> Path:
    (entry,) = config_cache.cache_dir().iterdir()
    return entry


def _edit_entry(change, *, resign: bool) -> None:
    """Change the stored config with ``change(config_dict)``, keeping or redoing the MAC."""
    path = _entry_file()
    entry = json.loads(path.read_text())
    content = json.loads(entry["body"])
    change(content["config"])
    entry["body"] = json.dumps(content, sort_keys=True)
    if resign:
        secret = (logstore.state_dir() / "cache.key").read_bytes()
        entry["mac"] = hmac.new(secret, entry["body"].encode(), hashlib.sha256).hexdigest()
    path.write_text(json.dumps(entry))


def _add_privileged(config: dict) -> None:
    for spec in config["sessions"]:
        if spec["name"] == "astro-dev":
            spec["command"].append("--privileged")


def _crc32_twin(data: bytes, region: range) -> bytes:
    """Other bytes of the same length and the same CRC32, differing only inside ``region``.

    CRC32 is affine over GF(2): flipping a set of bits changes the checksum by the XOR of what
    each flip alone changes. Flipping only the low 4 bits of 'A' (0x41) keeps every byte in
    '@'..'O', so the twin is still valid text; 4 bits x 40 bytes are many more than the 32
    needed for a set of flips whose changes cancel out (Gaussian elimination finds one).
    """
    base = zlib.crc32(data)
    flips = [(i, 1 << b) for i in region for b in range(4)]
    basis: dict[int, tuple[int, int]] = {}  # leading bit -> (checksum change, flips used)
    for index, (at, bit) in enumerate(flips):
        changed = bytearray(data)
        changed[at] ^= bit
        vector, used = zlib.crc32(bytes(changed)) ^ base, 1 << index
        while vector:
            top = vector.bit_length() - 1
            if top not in basis:
                basis[top] = (vector, used)
                break
            vector ^= basis[top][0]
            used ^= basis[top][1]
        else:
            twin = bytearray(data)
            for j, (at2, bit2) in enumerate(flips):
                if used >> j & 1:
                    twin[at2] ^= bit2
            return bytes(twin)
    raise AssertionError("no CRC32 twin found")


# =========================================================================== hits


def test_second_load_is_the_same_config_without_parsing(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    first = load_config(warn=False)
    second = load_config(warn=False)
    assert len(calls) == 1
    assert second == first  # specs, invalid entries, problems, settings all round-trip
    dev, prod = second.sessions["astro-dev"], second.sessions["astro-prod"]
    assert dev.env["PORT"] == "8080"
    assert dev.env["SECRET"] == "one"
    assert dev.ready == ProbeSpec("tcp", ("127.0.0.1", 8080), timeout=5.0)
    assert (dev.groups, dev.restart, dev.max_restarts) == (("bots",), "on-failure", 3)
    assert dev.env_files == (str(project.parent / "app.env"),)
    assert prod.options.volumes == (f"{project.parent}/data:/data:ro",)
    assert [(e.name, e.condition) for e in prod.depends_on] == [("astro-dev", "started")]
    assert "bad-one" in second.invalid
    assert second.problems == first.problems != ()


def test_cached_warnings_are_still_printed(project: Path, capsys) -> None:
    load_config()
    first = capsys.readouterr().err
    load_config()
    assert capsys.readouterr().err == first
    assert "session 'bad-one': image: invalid image reference 'UPPER/x'" in first


def test_no_cwd_in_the_key_another_folder_hits(project: Path, monkeypatch, tmp_path) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    seen = load_config(project, warn=False)
    assert len(calls) == 1
    # warnings are stored without the file's name: shown from where they are looked at
    assert seen.warning_lines()[0].startswith(f"{project}:20: session 'bad-one': image: ")
    monkeypatch.chdir(tmp_path)
    assert load_config(warn=False).warning_lines()[0].startswith("kstlib.conf.yml:20: ")


def test_cache_files_are_private(project: Path) -> None:
    load_config(warn=False)
    folder = config_cache.cache_dir()
    assert folder.stat().st_mode & 0o777 == 0o700
    assert _entry_file().stat().st_mode & 0o777 == 0o600
    assert (logstore.state_dir() / "cache.key").stat().st_mode & 0o777 == 0o600


# =========================================================================== misses


def test_any_edit_is_seen_even_within_the_same_clock_tick(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    stat = project.stat()
    edited = CONFIG.replace("astro-bot:v2", "astro-bot:v3")  # same size
    project.write_text(edited)
    os.utime(project, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime too
    assert load_config(warn=False).sessions["astro-prod"].image == "astro-bot:v3"
    assert len(calls) == 2


def test_same_length_and_crc32_but_other_bytes_is_a_miss(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    data = project.read_bytes()
    at = data.index(b"A" * 40)
    twin = _crc32_twin(data, range(at, at + 40))
    assert (len(twin), zlib.crc32(twin)) == (len(data), zlib.crc32(data))
    assert twin != data
    load_config(warn=False)
    stat = project.stat()
    project.write_bytes(twin)
    os.utime(project, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    token = load_config(warn=False).sessions["astro-dev"].env["TOKEN"]
    assert len(calls) == 2
    assert token == twin[at : at + 40].decode() != "A" * 40


def test_edited_env_file_is_a_miss(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    assert load_config(warn=False).sessions["astro-dev"].env["SECRET"] == "one"
    env = project.parent / "app.env"
    stat = env.stat()
    env.write_text("SECRET=two\n")  # same size and mtime
    os.utime(env, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_config(warn=False).sessions["astro-dev"].env["SECRET"] == "two"
    assert len(calls) == 2
    env.unlink()
    gone = load_config(warn=False)
    assert len(calls) == 3
    assert "astro-dev" in gone.invalid
    assert "env file not found" in gone.located(gone.invalid["astro-dev"])


def test_env_file_missing_or_refused_then_fixed_is_a_miss(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    env = project.parent / "app.env"
    env.unlink()
    first = load_config(warn=False)
    assert "astro-dev" in first.invalid
    env.write_text("LD_PRELOAD=/x.so\n")
    assert "LD_PRELOAD" in first.located(load_config(warn=False).invalid["astro-dev"])
    env.write_text("SECRET=back\n")
    assert load_config(warn=False).sessions["astro-dev"].env["SECRET"] == "back"
    assert len(calls) == 3


def test_hand_edited_entry_fails_the_signature(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    _edit_entry(_add_privileged, resign=False)
    spec = load_config(warn=False).sessions["astro-dev"]
    assert len(calls) == 2
    assert "--privileged" not in spec.command
    # Control: the very same edit signed with the user's secret is used, so what refused the
    # edit above is the signature, not anything else in the entry.
    _edit_entry(_add_privileged, resign=True)
    assert "--privileged" in load_config(warn=False).sessions["astro-dev"].command
    assert len(calls) == 2


def test_another_secret_is_a_miss(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    key = logstore.state_dir() / "cache.key"
    key.write_bytes(os.urandom(32))
    load_config(warn=False)
    assert len(calls) == 2


def test_a_secret_readable_by_others_is_not_used(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    (logstore.state_dir() / "cache.key").chmod(0o644)
    load_config(warn=False)
    load_config(warn=False)
    assert len(calls) == 3


def test_other_code_is_a_miss(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    monkeypatch.setattr(config_cache, "_code_stamp", lambda: [1, 2, 3])
    load_config(warn=False)
    assert len(calls) == 2
    monkeypatch.setattr(config_cache, "__version__", "99.0")
    load_config(warn=False)
    assert len(calls) == 3


# =========================================================================== the folder


def test_cache_folder_that_is_a_symlink_is_never_used(project: Path, monkeypatch,
                                                      tmp_path: Path) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    folder = config_cache.cache_dir()
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)  # its entry is good and signed...
    folder.symlink_to(elsewhere)
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir()}
    load_config(warn=False)
    load_config(warn=False)
    assert len(calls) == 3  # ...but behind a link it is never read
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == before  # nor written


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_cache_folder_others_may_write_is_never_used(project: Path, monkeypatch,
                                                     mode: int) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    folder = config_cache.cache_dir()
    folder.chmod(mode)
    entry = _entry_file()
    before = entry.read_bytes()
    load_config(warn=False)
    load_config(warn=False)
    assert len(calls) == 3
    assert entry.read_bytes() == before


def test_cache_folder_of_another_user_is_never_used(project: Path, monkeypatch) -> None:
    if os.getuid() != 0:
        pytest.skip("chown to another user needs root")
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    os.chown(config_cache.cache_dir(), 65534, 65534)
    load_config(warn=False)
    assert len(calls) == 2


def test_a_damaged_or_unwritable_cache_is_only_a_miss(project: Path, monkeypatch) -> None:
    load_config(warn=False)
    _entry_file().write_text("{not json")
    assert "astro-dev" in load_config(warn=False).sessions
    _entry_file().write_text('{"body": "{}", "mac": 5}')
    assert "astro-dev" in load_config(warn=False).sessions
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/no-such-place")
    assert "astro-dev" in load_config(warn=False).sessions


def test_cache_is_written_where_xdg_cache_home_does_not_exist_yet(project: Path, monkeypatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh" / "cache"))
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    load_config(warn=False)
    assert len(calls) == 1
