"""envfiles: dotenv files read with python-dotenv's parser, real files in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kstlib_tasks.envfiles import MAX_BYTES, EnvEntry, EnvFileError, read


def envfile(tmp_path: Path, content: str | bytes, name: str = ".env") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def pairs(path: Path) -> dict[str, str]:
    return {e.key: e.value for e in read(path)}


def test_basic_bindings_with_lines(tmp_path: Path) -> None:
    path = envfile(tmp_path, "# settings\nA=1\n\n\nB=two words\n  C = spaced  \nD=\n")
    assert read(path) == [
        EnvEntry("A", "1", 2),
        EnvEntry("B", "two words", 5),
        EnvEntry("C", "spaced", 6),
        EnvEntry("D", "", 7),
    ]


def test_empty_and_comment_only_files(tmp_path: Path) -> None:
    assert read(envfile(tmp_path, "")) == []
    assert read(envfile(tmp_path, "# nothing\n\n   \n# more\n")) == []


def test_comments(tmp_path: Path) -> None:
    # Not 'C= # comment': python-dotenv reads it as '' only since 1.2.4 (the comment text before).
    path = envfile(tmp_path, "A=1 # inline\nB=x#not-a-comment\n#D=4\n")
    assert pairs(path) == {"A": "1", "B": "x#not-a-comment"}


def test_quotes_keep_hashes_and_spaces(tmp_path: Path) -> None:
    path = envfile(
        tmp_path,
        "A=\"x # y\"\nB='a # b' # comment\nC=\"  padded  \"\nE=\"say \\\"hi\\\"\"\n",
    )
    values = pairs(path)
    assert values["A"] == "x # y"
    assert values["B"] == "a # b"
    assert values["C"] == "  padded  "
    assert values["E"] == 'say "hi"'


def test_escapes_only_in_double_quotes(tmp_path: Path) -> None:
    path = envfile(tmp_path, "A=\"a\\nb\"\nB='a\\nb'\nC=a\\nb\n")
    assert pairs(path) == {"A": "a\nb", "B": "a\\nb", "C": "a\\nb"}


def test_export_prefix(tmp_path: Path) -> None:
    path = envfile(tmp_path, "export A=1\nexport   B='two'\nexported=3\n")
    assert pairs(path) == {"A": "1", "B": "two", "exported": "3"}


def test_multiline_double_quoted_value(tmp_path: Path) -> None:
    path = envfile(tmp_path, 'KEY="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1\n')
    assert read(path) == [
        EnvEntry("KEY", "-----BEGIN-----\nabc\n-----END-----", 1),
        EnvEntry("NEXT", "1", 4),
    ]


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = envfile(tmp_path, b'A=1\r\n\r\nB="x\r\ny"\r\nC=3\r\n')
    assert read(path) == [EnvEntry("A", "1", 1), EnvEntry("B", "x\ny", 3), EnvEntry("C", "3", 5)]


def test_utf8_bom_and_non_ascii(tmp_path: Path) -> None:
    path = envfile(tmp_path, b"\xef\xbb\xbfA=caf\xc3\xa9\nB=2\n")
    assert read(path) == [EnvEntry("A", "café", 1), EnvEntry("B", "2", 2)]


def test_values_are_literal(tmp_path: Path) -> None:
    path = envfile(tmp_path, "A=${HOME}\nB=$(id)\nC=`id`\nD=\"${HOME}\"\n")
    assert pairs(path) == {"A": "${HOME}", "B": "$(id)", "C": "`id`", "D": "${HOME}"}


def test_later_duplicate_wins_with_its_line(tmp_path: Path) -> None:
    path = envfile(tmp_path, "A=1\nB=2\nA=3\n")
    assert read(path) == [EnvEntry("B", "2", 2), EnvEntry("A", "3", 3)]


def test_key_without_equal_sign(tmp_path: Path) -> None:
    path = envfile(tmp_path, "A=1\n\nFOO\nB=2\n")
    with pytest.raises(EnvFileError) as info:
        read(path)
    err = info.value
    assert str(err) == f"{path}:3: FOO: expected NAME=value"
    assert (err.path, err.line, err.message) == (path, 3, "FOO: expected NAME=value")
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("A=1\nB='unterminated\nC=3\n", 2),
        ("=value\n", 1),
        ("A=1\n\n\nFOO BAR=1\n", 4),
        ('A="x" trailing\n', 1),
        ("A=1\nB=2\n'KEY\n", 3),
    ],
)
def test_unparsable_line(tmp_path: Path, content: str, line: int) -> None:
    path = envfile(tmp_path, content)
    with pytest.raises(EnvFileError) as info:
        read(path)
    assert str(info.value) == f"{path}:{line}: cannot parse this line"
    assert info.value.line == line


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.env"
    with pytest.raises(EnvFileError) as info:
        read(path)
    assert str(info.value) == f"{path}: env file not found"
    assert info.value.line is None


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError) as info:
        read(tmp_path)
    assert str(info.value) == f"{tmp_path}: not a regular file"


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.env"
    os.mkfifo(fifo)
    with pytest.raises(EnvFileError, match="not a regular file"):
        read(fifo)


def test_unreadable_file_gives_the_os_error(tmp_path: Path) -> None:
    path = envfile(tmp_path, "A=1\n")
    with pytest.raises(EnvFileError) as info:
        read(path / "below-a-file")
    assert str(info.value) == f"{path / 'below-a-file'}: Not a directory"


def test_too_big(tmp_path: Path) -> None:
    path = envfile(tmp_path, b"A=" + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(EnvFileError) as info:
        read(path)
    assert str(info.value) == f"{path}: env file larger than 1 MiB"


def test_exactly_one_mib_is_accepted(tmp_path: Path) -> None:
    content = b"A=" + b"x" * (MAX_BYTES - 3) + b"\n"
    assert len(content) == MAX_BYTES
    assert read(envfile(tmp_path, content))[0].value == "x" * (MAX_BYTES - 3)


def test_not_utf8(tmp_path: Path) -> None:
    path = envfile(tmp_path, b"A=1\nB=caf\xe9\n")
    with pytest.raises(EnvFileError) as info:
        read(path)
    assert str(info.value) == f"{path}:2: not UTF-8 text"


def test_nul_refused(tmp_path: Path) -> None:
    path = envfile(tmp_path, b"A=1\r\nB=x\x00y\n")
    with pytest.raises(EnvFileError) as info:
        read(path)
    assert str(info.value) == f"{path}:2: contains a NUL"


def test_path_given_as_text(tmp_path: Path) -> None:
    path = envfile(tmp_path, "A=1\n")
    assert read(str(path)) == [EnvEntry("A", "1", 1)]  # type: ignore[arg-type]
