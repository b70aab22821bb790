"""`--write-env`: set TG_SESSION_STRING in a .env file, only a regular file of this user's.

Symbolic links, devices and FIFOs are refused before anything is opened; the file is
rewritten byte for byte except the one value, next to itself, and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path

from itam_tgstats.errors import ConfigError


def check_env_target(path: Path) -> None:
    """Refuse, as ConfigError, a --write-env path that is not ours to write.

    Allowed: a regular file owned by this user, or a new name, in a folder this user may
    write. Symbolic links are refused, not followed; devices, FIFOs and sockets are never
    opened. The folder must be writable by its permission bits for this user, even for
    root, who could override them: a folder someone made read-only is not written into.
    """
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        info = None
    except OSError as e:
        raise ConfigError(f"--write-env {path}: {e.strerror or e}") from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise ConfigError(
                f"--write-env {path} is a symbolic link; give the path of the file itself"
            )
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"--write-env {path} is a directory, not a .env file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"--write-env {path} is {_kind(info.st_mode)}, not a regular file")
        if info.st_uid != os.geteuid():
            raise ConfigError(
                f"--write-env {path} belongs to another user (uid {info.st_uid}); "
                "run as that user or choose another file"
            )
    folder = path.parent
    try:
        folder_info = folder.stat()
    except OSError:
        raise ConfigError(f"--write-env {path}: the directory {folder} does not exist") from None
    if not stat.S_ISDIR(folder_info.st_mode):
        raise ConfigError(f"--write-env {path}: {folder} is not a directory")
    if not _may_write(folder, folder_info):
        raise ConfigError(f"--write-env {path}: this user cannot write in the folder {folder}")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a file"


def _may_write(folder: Path, info: os.stat_result) -> bool:
    """Writable by the permission bits for this user (root included), and by the kernel."""
    if info.st_uid == os.geteuid():
        bits = stat.S_IWUSR | stat.S_IXUSR
    elif info.st_gid == os.getegid() or info.st_gid in os.getgroups():
        bits = stat.S_IWGRP | stat.S_IXGRP
    else:
        bits = stat.S_IWOTH | stat.S_IXOTH
    # os.access adds what the bits do not show: read-only mounts, ACLs.
    effective = os.access in os.supports_effective_ids
    return info.st_mode & bits == bits and os.access(
        folder, os.W_OK | os.X_OK, effective_ids=effective
    )


def write_env(path: Path, session_string: str) -> None:
    """Set TG_SESSION_STRING in the .env file at `path` (created if missing), mode 0600.

    Every other byte of the file is kept (line endings, `export`, comments, quoting). The
    new file is written next to the old one and renamed over it, so a crash leaves either
    the old file or the new one, and no copy of the secret.
    """
    check_env_target(path)  # again: the login took a while
    try:
        old = _read_own_file(path)
        _replace(path, with_session_string(old, session_string))
    except OSError as e:
        raise ConfigError(
            f"--write-env {path}: cannot write it ({e.strerror or e}); nothing was written"
        ) from None


_ENV_LINE = re.compile(
    rb"(?P<key>[ \t]*(?:export[ \t]+)?TG_SESSION_STRING[ \t]*=[ \t]*)"
    rb"(?P<value>'[^'\r\n]*'|\"(?:[^\"\\\r\n]|\\.)*\"|[^\r\n]*?)"
    rb"(?P<rest>(?:[ \t]+#[^\r\n]*)?[ \t]*(?:\r\n|\n|\r)?)"
)


def with_session_string(text: bytes, session_string: str) -> bytes:
    """`text` (a .env file's bytes) with TG_SESSION_STRING set: in place where the key is,
    keeping its `export` and quotes, or appended in the file's own line ending."""
    value = session_string.encode("ascii")
    lines = text.splitlines(keepends=True)
    found = False
    for i, line in enumerate(lines):
        match = _ENV_LINE.fullmatch(line)
        if match is None:
            continue
        found = True
        old = match["value"]
        quote = old[:1] if old[:1] in (b"'", b'"') else b""
        lines[i] = match["key"] + quote + value + quote + match["rest"]
    if found:
        return b"".join(lines)
    newline = re.search(rb"\r\n|\n|\r", text)
    eol = newline.group() if newline else b"\n"
    if text and not text.endswith((b"\n", b"\r")):
        text += eol
    return text + b"TG_SESSION_STRING=" + value + eol


def _read_own_file(path: Path) -> bytes:
    """The file's bytes (empty when it does not exist), refusing what is not ours."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO: no hang
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise ConfigError(
                f"--write-env {path} changed while the login ran; nothing was written"
            )
        return file.read()


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to a 0600 temporary file in the same folder, fsync, rename over `path`."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    # The rename is durable once the folder is synced; some filesystems cannot sync one.
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
