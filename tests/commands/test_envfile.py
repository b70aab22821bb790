"""`--write-env`: only regular files of this user's, every other byte kept, written atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from itam_tgstats.commands import envfile
from itam_tgstats.commands.envfile import check_env_target, with_session_string, write_env
from itam_tgstats.errors import ConfigError

OTHER_UID = 54321


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # CRLF stays CRLF; `export`, comments and the other lines' quoting are untouched
        (
            b'A=1\r\nexport TG_SESSION_STRING=old\r\n# c\r\nB="x y"',
            b'A=1\r\nexport TG_SESSION_STRING=NEW\r\n# c\r\nB="x y"',
        ),
        # the key's own quotes, spacing and trailing comment are kept
        (
            b"  TG_SESSION_STRING = 'old'  # minted in May\n",
            b"  TG_SESSION_STRING = 'NEW'  # minted in May\n",
        ),
        (b'TG_SESSION_STRING="o\\"ld"\n', b'TG_SESSION_STRING="NEW"\n'),
        (b"TG_SESSION_STRING=old#not-a-comment\n", b"TG_SESSION_STRING=NEW\n"),
        (b"TG_SESSION_STRING=\n", b"TG_SESSION_STRING=NEW\n"),
        (b"TG_SESSION_STRING=old", b"TG_SESSION_STRING=NEW"),  # no final newline: none added
        # every occurrence, so no later one overrides the new value
        (b"TG_SESSION_STRING=a\nX=1\nTG_SESSION_STRING=b\n", b"TG_SESSION_STRING=NEW\nX=1\n"
         b"TG_SESSION_STRING=NEW\n"),
        # appended in the file's own line ending, after a last line that had none
        (b"A=1\r\nB=2", b"A=1\r\nB=2\r\nTG_SESSION_STRING=NEW\r\n"),
        (b"A=1\n", b"A=1\nTG_SESSION_STRING=NEW\n"),
        (b"", b"TG_SESSION_STRING=NEW\n"),
        # look-alike keys are other keys
        (b"# TG_SESSION_STRING=old\nMY_TG_SESSION_STRING=x\n",
         b"# TG_SESSION_STRING=old\nMY_TG_SESSION_STRING=x\nTG_SESSION_STRING=NEW\n"),
        # bytes that are not UTF-8 survive
        (b"T=\xcf\xf0\xe8\xe2\xe5\xf2\n", b"T=\xcf\xf0\xe8\xe2\xe5\xf2\nTG_SESSION_STRING=NEW\n"),
    ],
)  # fmt: skip
def test_only_the_session_value_changes(before: bytes, after: bytes) -> None:
    assert with_session_string(before, "NEW") == after


def test_write_env_updates_only_the_session_line_with_mode_0600(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"TG_API_ID=12345\r\nexport TG_SESSION_STRING=old\r\n# keep me\r\n")
    env_file.chmod(0o644)
    write_env(env_file, "NEWSESSION")
    assert env_file.read_bytes() == (
        b"TG_API_ID=12345\r\nexport TG_SESSION_STRING=NEWSESSION\r\n# keep me\r\n"
    )
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    fresh = tmp_path / "new.env"
    write_env(fresh, "S")
    assert fresh.read_text() == "TG_SESSION_STRING=S\n"
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "new.env"]


def test_the_secret_is_written_to_a_0600_file_next_to_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("A=1\n")
    seen: list[tuple[Path, int, bytes]] = []
    real_fsync = os.fsync

    def watching_fsync(fd: int) -> None:
        path = Path(f"/proc/self/fd/{fd}").readlink()
        if path.is_file():
            seen.append((path, stat.S_IMODE(os.fstat(fd).st_mode), path.read_bytes()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watching_fsync)
    write_env(env_file, "SECRET")
    [(temporary, mode, content)] = seen
    assert temporary.parent == tmp_path and temporary != env_file
    assert (mode, content) == (0o600, b"A=1\nTG_SESSION_STRING=SECRET\n")
    assert not temporary.exists()


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_copy_of_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TG_SESSION_STRING=old\n")

    def failing_fsync(_fd: int) -> None:
        raise failure

    monkeypatch.setattr(os, "fsync", failing_fsync)
    if isinstance(failure, OSError):
        with pytest.raises(ConfigError) as caught:
            write_env(env_file, "SECRET")
        assert str(caught.value) == (
            f"--write-env {env_file}: cannot write it (No space left on device); "
            "nothing was written"
        )
    else:
        with pytest.raises(KeyboardInterrupt):
            write_env(env_file, "SECRET")
    assert [p.name for p in tmp_path.iterdir()] == [".env"]
    assert env_file.read_text() == "TG_SESSION_STRING=old\n"


def test_a_symlink_is_refused_and_neither_it_nor_its_target_changes(tmp_path: Path) -> None:
    target = tmp_path / "real.env"
    target.write_text("A=1\n")
    target.chmod(0o644)
    link = tmp_path / ".env"
    link.symlink_to(target)
    for step in (check_env_target, lambda p: write_env(p, "SECRET")):
        with pytest.raises(ConfigError) as caught:
            step(link)
        assert str(caught.value) == (
            f"--write-env {link} is a symbolic link; give the path of the file itself"
        )
    assert link.is_symlink() and target.read_text() == "A=1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    dangling = tmp_path / "dangling.env"
    dangling.symlink_to(tmp_path / "nowhere.env")
    with pytest.raises(ConfigError, match="is a symbolic link"):
        write_env(dangling, "SECRET")
    assert not (tmp_path / "nowhere.env").exists()


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.env"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as caught:
        write_env(fifo, "SECRET")  # opening it for writing would block forever
    assert str(caught.value) == f"--write-env {fifo} is a FIFO, not a regular file"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_device_file_is_refused_and_stays_a_device() -> None:
    with pytest.raises(ConfigError) as caught:
        write_env(Path(os.devnull), "SECRET")
    assert str(caught.value) == "--write-env /dev/null is a device file, not a regular file"
    assert stat.S_ISCHR(Path(os.devnull).lstat().st_mode)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        check_env_target(tmp_path)
    assert str(caught.value) == f"--write-env {tmp_path} is a directory, not a .env file"


def someone_elses_file(tmp_path: Path) -> Path:
    """A regular file owned by another user: ours, given away (root), or a system one."""
    if os.geteuid() != 0:
        return Path("/etc/passwd")
    path = tmp_path / ".env"
    path.write_text("A=1\n")
    os.chown(path, OTHER_UID, OTHER_UID)
    return path


def test_a_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = someone_elses_file(tmp_path)
    owner = path.stat().st_uid
    before = path.read_bytes()
    for step in (check_env_target, lambda p: write_env(p, "SECRET")):
        with pytest.raises(ConfigError) as caught:
            step(path)
        assert str(caught.value) == (
            f"--write-env {path} belongs to another user (uid {owner}); "
            "run as that user or choose another file"
        )
    assert path.read_bytes() == before and path.stat().st_uid == owner


@pytest.mark.parametrize("existing", [False, True])
def test_a_folder_without_write_permission_is_refused_even_for_root(
    tmp_path: Path, existing: bool
) -> None:
    """Judged by the folder's permission bits for this user, so root (who could write
    there anyway) refuses too; os.access adds read-only mounts and ACLs."""
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / ".env"
    if existing:
        path.write_text("A=1\n")
    folder.chmod(0o555)
    try:
        with pytest.raises(ConfigError) as caught:
            write_env(path, "SECRET")
        assert str(caught.value) == (
            f"--write-env {path}: this user cannot write in the folder {folder}"
        )
        assert sorted(p.name for p in folder.iterdir()) == ([".env"] if existing else [])
    finally:
        folder.chmod(0o755)


def test_a_folder_owned_by_another_user_needs_write_permission_for_others(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a folder away needs root")
    folder = tmp_path / "theirs"
    folder.mkdir()
    os.chown(folder, OTHER_UID, OTHER_UID)
    folder.chmod(0o755)
    with pytest.raises(ConfigError, match="this user cannot write in the folder"):
        check_env_target(folder / ".env")
    folder.chmod(0o757)  # writable for others: allowed
    check_env_target(folder / ".env")


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "missing" / ".env"
    with pytest.raises(ConfigError) as caught:
        check_env_target(path)
    assert str(caught.value) == f"--write-env {path}: the directory {path.parent} does not exist"
    file_as_folder = tmp_path / "file"
    file_as_folder.write_text("")
    with pytest.raises(ConfigError) as caught:
        check_env_target(file_as_folder / ".env")
    assert str(caught.value) == (
        f"--write-env {file_as_folder / '.env'}: {file_as_folder} is not a directory"
    )


def test_the_write_itself_refuses_what_is_not_a_regular_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Swapped in after the check (the login takes minutes): no hang, no link followed."""
    monkeypatch.setattr(envfile, "check_env_target", lambda _path: None)
    fifo = tmp_path / "fifo.env"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as caught:
        write_env(fifo, "SECRET")
    assert (
        str(caught.value) == f"--write-env {fifo} changed while the login ran; nothing was written"
    )
    target = tmp_path / "real.env"
    target.write_text("A=1\n")
    link = tmp_path / "link.env"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match=r"^--write-env .*link\.env: cannot write it \("):
        write_env(link, "SECRET")
    assert target.read_text() == "A=1\n" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.env", "link.env", "real.env"]


# --- only a .env file, never a system file ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n", 1),
        (b"#!/bin/sh\nset -e\necho started\n", 2),
        (b'{"TG_API_ID": 12345}\n', 1),
        (b"A=1\n[section]\nB=2\n", 2),
        (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake user@host\n", 1),
        (b"A=1\nexport\n", 2),
        (b"A=1\nnot a line\n", 2),
        (b"A=1\n\x00\x01\x02\n", 2),
    ],
)  # fmt: skip
def test_a_file_that_is_not_an_env_file_is_refused_untouched(
    tmp_path: Path, text: bytes, line: int
) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(text)
    path.chmod(0o644)
    for attempt in (check_env_target, lambda p: write_env(p, "SECRET")):
        with pytest.raises(ConfigError) as caught:
            attempt(path)
        assert str(caught.value) == (
            f"--write-env {path} is not a .env file (line {line} is neither empty, a comment, "
            "nor KEY=value); give the path of the .env file"
        )
    assert path.read_bytes() == text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\n\n",
        b"# comment\n  # indented comment\n",
        b"A=1\nexport B=2\n  C = 'three'\nD=\"multi\nline\"\nE=\n",
        b"\xef\xbb\xbfA=1\r\n",
        b"TG_SESSION_STRING\n",
        b"export TG_SESSION_STRING\n",
        b"A=1 # comment\n",
        b"A.B=1\n",
        b"A=\xff\xfe\n",
    ],
)
def test_an_env_file_is_accepted(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / ".env"
    path.write_bytes(text)
    check_env_target(path)
    write_env(path, "NEW")
    assert b"TG_SESSION_STRING=NEW" in path.read_bytes()


def test_a_file_too_big_for_a_env_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    path.write_bytes(b"A=1\n" * 300_000)
    with pytest.raises(ConfigError) as caught:
        check_env_target(path)
    assert str(caught.value) == (
        f"--write-env {path} is not a .env file (1200000 bytes); give the path of the .env file"
    )


@pytest.fixture
def never_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal is tested without ever writing: a write would fail the test first."""

    def refuse(*_args: object) -> None:
        raise AssertionError("a system path was about to be written")

    monkeypatch.setattr(envfile, "_replace", refuse)


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "/etc/tgstats-never-written.env", "/usr/local/tgstats.env",
     "/proc/self/environ", "/sys/kernel/tgstats.env", "/dev/shm/tgstats.env",  # noqa: S108
     "/boot/tgstats.env", "/etc/../etc/tgstats.env"],
)  # fmt: skip
def test_system_paths_are_refused(never_written: None, path: str) -> None:
    existed = Path(path).exists()
    for attempt in (check_env_target, lambda p: write_env(p, "SECRET")):
        with pytest.raises(ConfigError) as caught:
            attempt(Path(path))
        message = str(caught.value)
        assert message.startswith(f"--write-env {path} ")
        assert "system directory" in message or "not a regular file" in message
    assert Path(path).exists() is existed


def test_a_system_path_behind_a_link_to_its_folder_is_refused(
    never_written: None, tmp_path: Path
) -> None:
    folder = tmp_path / "config"
    folder.symlink_to("/etc")
    path = folder / "tgstats-never-written.env"
    with pytest.raises(ConfigError) as caught:
        check_env_target(path)
    assert str(caught.value) == (
        f"--write-env {path} is in /etc, a system directory; give the path of your "
        "project's .env file"
    )


def test_the_session_command_refuses_a_system_path_before_the_login(
    env: dict[str, str], never_written: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from itam_tgstats.cli import app
    from itam_tgstats.telegram import login

    async def no_login(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("logged in")

    monkeypatch.setattr(login, "login", no_login)
    result = CliRunner().invoke(app, ["session", "--write-env", "/etc/tgstats-never.env"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --write-env /etc/tgstats-never.env is in /etc, a system directory; give the "
        "path of your project's .env file\n"
    )
    assert not Path("/etc/tgstats-never.env").exists()
