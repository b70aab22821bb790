"""`--write-env`: set TG_SESSION_STRING in a .env file, only a regular file of this user's.

Symbolic links, devices and FIFOs are refused before anything is opened, and so are a file
that is not a .env file and anything in a system directory; the file is rewritten byte for
byte except the one value, next to itself, and renamed into place.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from dotenv.parser import parse_stream

from itam_tgstats.errors import ConfigError


def check_env_target(path: Path) -> None:
    """Refuse, as ConfigError, a --write-env path that is not ours to write.

    Allowed: a regular file owned by this user that is a .env file (every line empty, a
    comment or a binding), or a new name, in a folder this user may write, outside the
    system directories (SYSTEM_DIRECTORIES, also through a link to one). Symbolic links
    are refused, not followed; devices, FIFOs and sockets are never opened. The folder must
    be writable by its permission bits for this user, even for root, who could override
    them: a folder someone made read-only is not written into.
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
        if not os.access(path, os.R_OK, effective_ids=os.access in os.supports_effective_ids):
            raise ConfigError(f"--write-env {path}: this user cannot read it")
    system = system_directory(path)
    if system is not None:
        raise ConfigError(
            f"--write-env {path} is in {system}, a system directory; give the path of your "
            "project's .env file"
        )
    _check_folder(path)
    if info is not None:
        _check_env_file(path)


def _check_folder(path: Path) -> None:
    """ConfigError unless the folder of `path` is one this user may write in."""
    folder = path.parent
    try:
        folder_info = folder.stat()
    except OSError:
        raise ConfigError(f"--write-env {path}: the directory {folder} does not exist") from None
    if not stat.S_ISDIR(folder_info.st_mode):
        raise ConfigError(f"--write-env {path}: {folder} is not a directory")
    if not _may_write(folder, folder_info):
        raise ConfigError(f"--write-env {path}: this user cannot write in the folder {folder}")


# Never written into, whatever the permissions say: `--write-env /etc/passwd` run as root
# would append the session to it.
SYSTEM_DIRECTORIES = ("/etc", "/usr", "/proc", "/sys", "/dev", "/boot")
# A .env file is a few kilobytes; a bigger file is something else.
MAX_ENV_BYTES = 1024 * 1024
# A key of a binding, as .env files and shells spell them; one without `=` only as a name.
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def system_directory(path: Path) -> str | None:
    """The system directory `path` is in (after `..` and links to its folder), or None."""
    where = [Path(os.path.abspath(path))]  # noqa: PTH100 - `..` undone, no link followed
    with contextlib.suppress(OSError, RuntimeError):
        where.append(path.parent.resolve() / path.name)
    for candidate in where:
        for root in SYSTEM_DIRECTORIES:
            if candidate == Path(root) or Path(root) in candidate.parents:
                return root
    return None


def _check_env_file(path: Path) -> None:
    """ConfigError unless the existing file at `path` reads as a .env file: every line
    empty, a comment, `KEY=value` or `export KEY=value` (a bare `KEY` too, which
    python-dotenv reads as unset). Its lines are never quoted back: they may be secrets."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ConfigError(f"--write-env {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_ENV_BYTES:
            raise ConfigError(
                f"--write-env {path} is not a .env file ({size} bytes); give the path of the "
                ".env file"
            )
        text = file.read(MAX_ENV_BYTES + 1).decode("utf-8", "surrogateescape")
    for binding in parse_stream(io.StringIO(text)):
        if not _is_env_line(binding):
            raise ConfigError(
                f"--write-env {path} is not a .env file (line {binding.original.line} is "
                "neither empty, a comment, nor KEY=value); give the path of the .env file"
            )


def _is_env_line(binding: Any) -> bool:
    """One python-dotenv binding: a blank or comment line, or a key with a value (a bare
    key only when it is a name, `export` alone is none)."""
    if binding.error:
        return False
    if binding.key is None:
        return True
    if binding.value is None:
        return bool(_BARE_NAME.fullmatch(binding.key)) and binding.key != "export"
    return bool(_KEY_NAME.fullmatch(binding.key))


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


KEY = "TG_SESSION_STRING"
# What a session string is made of (URL-safe base64): nothing that quotes, comments or
# ends a line in a .env file.
_SESSION_STRING = re.compile(r"[A-Za-z0-9_=+/.-]+")
# One binding as python-dotenv reads it: leading blank lines, `export` and the key (maybe
# in single quotes); `=` and the spaces after it; the value, quoted (maybe over several
# lines) or up to the end of the line; then the rest (an inline comment, the line end).
_KEY = r"\s*(?:export[^\S\r\n]+)?(?:'[^']+'|[^=#\s]+)"
_BINDING = re.compile(
    rf"(?P<head>{_KEY}[^\S\r\n]*=(?P<space>[^\S\r\n]*))"
    r"(?P<value>'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|[^\r\n]*)"
    r"(?P<rest>.*)",
    re.DOTALL,
)
# A key without `=`, which python-dotenv reads as unset.
_KEY_ONLY = re.compile(rf"(?P<head>{_KEY})(?P<rest>.*)", re.DOTALL)
# Where python-dotenv ends an unquoted value: at whitespace and `#`, without trailing spaces.
_UNQUOTED_END = re.compile(r"(?:\s+#.*)?\s*\Z", re.DOTALL)


def with_session_string(text: bytes, session_string: str) -> bytes:
    """`text` (a .env file's bytes) with TG_SESSION_STRING set: in place wherever
    python-dotenv (which reads the file back) finds the key, keeping its `export`, quotes and
    comment, or appended in the file's own line ending. Every other byte stays.
    """
    if not _SESSION_STRING.fullmatch(session_string):
        raise ValueError("a session string is URL-safe base64; refusing to write this one")
    # Bytes that are not UTF-8 pass through as surrogates and come back unchanged.
    decoded = text.decode("utf-8", "surrogateescape")
    bindings = list(parse_stream(io.StringIO(decoded)))
    parsed = "".join(binding.original.string for binding in bindings)
    out = [decoded[: len(decoded) - len(parsed)]]  # a byte-order mark the parser skipped
    found = False
    for binding in bindings:
        original = binding.original.string
        if binding.key == KEY:  # with a value, or alone (which would unset it)
            found = True
            original = _with_value(original, session_string)
        out.append(original)
    result = "".join(out)
    if not found:
        newline = re.search(r"\r\n|\n|\r", result)
        eol = newline.group() if newline else "\n"
        if result and not result.endswith(("\n", "\r")):
            result += eol
        result += f"{KEY}={session_string}{eol}"
    return result.encode("utf-8", "surrogateescape")


def _with_value(binding: str, value: str) -> str:
    """One `KEY=value` or `KEY` binding's text (as python-dotenv parsed it) with a new value."""
    match = _BINDING.fullmatch(binding)
    if match is None:
        key_only = _KEY_ONLY.fullmatch(binding)
        if key_only is None:  # python-dotenv read a key here, so this cannot happen
            raise ValueError(f"cannot find the key in {binding!r}")
        rest = key_only["rest"]
        return key_only["head"] + "=" + value + (" " if rest.startswith("#") else "") + rest
    old, rest = match["value"], match["rest"]
    if old[:1] in ("'", '"'):
        return match["head"] + old[0] + value + old[0] + rest
    if match["space"] and old.startswith("#"):  # `KEY= # comment`: the value is empty
        return match["head"] + value + " " + old + rest
    end = _UNQUOTED_END.search(old)
    cut = end.start() if end else len(old)
    return match["head"] + value + old[cut:] + rest


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
    # A short prefix: the longest name a folder allows plus mkstemp's part would not fit.
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:32]}.", suffix=".tmp")
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
