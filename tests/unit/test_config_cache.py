"""The validated-config cache: used only for the very same text, code, path and folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kstlib_tasks import config_cache, config_parser
from kstlib_tasks.config import load_config

CONFIG = """ops:
  sessions:
    astro-dev:
      command: "python3 -m astro.bot --mode dev"
      env: {BOT_MODE: dev, PORT: 8080}
    astro-prod:
      backend: container
      image: astro-bot:v2
      volumes: ["./data:/data:ro"]
      ports: ["8080:80"]
    bad-one:
      backend: container
      image: UPPER/x
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "kstlib.conf.yml").write_text(CONFIG)
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


def test_second_load_is_the_same_config_without_parsing(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    first = load_config(warn=False)
    second = load_config(warn=False)
    assert len(calls) == 1
    assert second == first  # specs, invalid entries, warnings and defaults all round-trip
    assert second.sessions["astro-dev"].env["PORT"] == "8080"
    assert second.sessions["astro-prod"].volumes == (f"{project.parent}/data:/data:ro",)
    assert "bad-one" in second.invalid


def test_cached_warnings_are_still_printed(project: Path, capsys) -> None:
    load_config()
    first = capsys.readouterr().err
    load_config()
    assert capsys.readouterr().err == first
    assert "session 'bad-one': image: invalid image reference 'UPPER/x'" in first


def test_any_edit_is_seen_even_within_the_same_clock_tick(project: Path, monkeypatch) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    stat = project.stat()
    edited = CONFIG.replace("astro-bot:v2", "astro-bot:v3")  # same size
    project.write_text(edited)
    os.utime(project, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime too
    assert load_config(warn=False).sessions["astro-prod"].image == "astro-bot:v3"
    assert len(calls) == 2


def test_another_folder_is_a_miss(project: Path, monkeypatch, tmp_path: Path) -> None:
    calls = _count_parses(monkeypatch)
    load_config(warn=False)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # warnings name the file relative to the cwd
    load_config(warn=False)
    assert len(calls) == 2


def test_a_damaged_or_unwritable_cache_is_only_a_miss(project: Path, monkeypatch) -> None:
    load_config(warn=False)
    (cache_file,) = config_cache.cache_dir().iterdir()
    cache_file.write_text("{not json")
    assert "astro-dev" in load_config(warn=False).sessions
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/no-such-place")
    assert "astro-dev" in load_config(warn=False).sessions
