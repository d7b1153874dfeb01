"""Whether a config file may be used: it decides which programs run, as the caller.

A ``kstlib.conf.yml`` names commands, images and even the tmux binary, and kstlib runs them
with the caller's rights, often root's. A file that someone else could have written is
therefore refused (exit 2, one line naming the file and what is wrong), as git refuses a
repository owned by another user (``safe.directory``) and ssh a key file others can write
(``StrictModes``):

* the file is owned by another user than the caller or root;
* the file is writable by everyone;
* the file, or one of the folders above it, lies in a folder that everyone may write without
  the sticky bit (anyone could rename it and put another file there; a sticky ``/tmp`` is fine:
  only the file's owner can replace it there);
* the file's own folder is owned by another user than the caller or root.

Group-writable files and folders are accepted: a team sharing a project through a group is the
common case, and the group's members are trusted with the project anyway.

``KSTLIB_TRUST_CONFIG=PATH[:PATH...]`` trusts the files (or every file under the folders) it
names, whatever the above says: the caller's explicit opt-in. Symlinks are judged at both ends:
the link's own folder and the file it leads to.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import ConfigError

TRUST_VAR = "KSTLIB_TRUST_CONFIG"


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name!r}"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _trusted_by_caller(path: Path) -> bool:
    listed = os.environ.get(TRUST_VAR, "")
    real = os.path.realpath(path)
    for item in listed.split(os.pathsep):
        if not item:
            continue
        trusted = os.path.realpath(os.path.expanduser(item))
        if real == trusted or real.startswith(trusted.rstrip("/") + "/"):
            return True
    return False


def problem(path: Path) -> str | None:
    """What makes ``path`` untrustworthy, or None when it may be used."""
    me = os.getuid()
    allowed = {me, 0}
    try:
        info = os.stat(path)
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if info.st_uid not in allowed:
        return f"it is owned by {_owner(info.st_uid)}"
    if info.st_mode & stat.S_IWOTH:
        return f"it is writable by everyone (mode {stat.S_IMODE(info.st_mode):04o})"
    folders: list[Path] = []
    for start in (Path(os.path.abspath(path)), Path(os.path.realpath(path))):
        for folder in start.parents:
            if folder not in folders:
                folders.append(folder)
    for folder in folders:
        try:
            finfo = os.stat(folder)
        except OSError:
            continue
        mode = finfo.st_mode
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            return (f"folder {folder} is writable by everyone without the sticky bit "
                    f"(mode {stat.S_IMODE(mode):04o}): anyone could replace the file")
        if finfo.st_uid not in allowed and folder in Path(os.path.realpath(path)).parents[:1]:
            return f"its folder {folder} is owned by {_owner(finfo.st_uid)}"
    return None


def check(path: Path, what: str = "config file") -> None:
    """ConfigError when ``path`` must not be used (see the module docstring); ``what`` names
    it in the message (an env file is held to the same rules: it sets PATH)."""
    if _trusted_by_caller(path):
        return
    reason = problem(path)
    if reason is None:
        return
    raise ConfigError(
        f"{what} '{path}' is not trusted: {reason}",
        hint=f"fix its owner or mode, or trust it explicitly: {TRUST_VAR}={path}",
    )
