"""The docs stay in step with the code: every variable and command is documented."""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import metadata
from pathlib import Path

from typer.testing import CliRunner

from itam_tgstats.cli import app

REPO = Path(__file__).resolve().parent.parent
VARIABLES = {
    "TG_API_ID", "TG_API_HASH", "TG_SESSION_STRING", "TG_CHANNEL_USERNAME", "REDIS_URL",
    "TG_UPDATE_INTERVAL", "TG_POSTS_COUNT", "LOG_LEVEL", "TG_FLOOD_WAIT_MAX", "TG_TIMEOUT",
    "TG_HISTORY_DAYS", "TG_MEDIA_DOWNLOAD", "TG_POST_HISTORY_DAYS", "TG_ADMIN_STATS_HOURS",
    "TG_EVENTS_MAX",
}  # fmt: skip


def test_every_variable_the_code_reads_is_documented() -> None:
    source = (REPO / "itam_tgstats" / "config.py").read_text()
    read = set(re.findall(r'(?:get|integer)\("([A-Z_]+)"', source))
    assert read == VARIABLES
    example = (REPO / ".env.example").read_text()
    assert {
        line.split("=")[0] for line in example.splitlines() if "=" in line and line[0] != "#"
    } == VARIABLES
    readme = (REPO / "README.md").read_text()
    assert all(f"| `{name}` |" in readme for name in VARIABLES)
    configuration = (REPO / "docs" / "configuration.md").read_text()
    assert all(f"| `{name}` |" in configuration for name in VARIABLES)


def test_every_command_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for command in ("collect", "show", "session"):
        assert f"`tgstats {command}`" in readme
        assert CliRunner().invoke(app, [command, "--help"]).exit_code == 0
    for option in ("--once", "--loop", "--dry-run", "--json", "--check", "--phone", "--write-env",
                   "--from-telethon", "--channel", "--retry-now", "--post"):  # fmt: skip
        assert option in readme


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [REPO / name for name in listed if (REPO / name).is_file()]


# Spelled in pieces so that this file does not match itself.
OUTSIDE_MARKERS = ("../" + "shared", "CONTRACT" + ".md")


def test_the_repo_stands_on_its_own() -> None:
    """Nothing points outside the repository (a clone has no spec folder beside it)."""
    outside = [
        f"{path.relative_to(REPO)}"
        for path in tracked_files()
        if path.suffix in {".py", ".md", ".toml", ".yaml", ".txt", ""}
        and path.name != "run"  # .ci/run may know where CI checks out things
        and any(marker in path.read_text(errors="replace") for marker in OUTSIDE_MARKERS)
    ]
    assert outside == []


def test_every_redis_key_is_documented() -> None:
    source = (REPO / "itam_tgstats" / "store" / "keys.py").read_text()
    keys = set(re.findall(r'"(tg:[a-z_:]+)"', source))
    docs = (REPO / "docs" / "redis-keys.md").read_text()
    assert keys >= {
        "tg:channel:stats",
        "tg:channel:posts",
        "tg:last_update",
        "tg:status",
        "tg:lock",
    }
    assert all(f"`{key}" in docs for key in keys), keys
    for field in ("text_html", "media", "link_preview", "poll", "buttons", "forwarded_from",
                  "edited_at", "author", "thumbnail", "image", "channels"):  # fmt: skip
        assert f"`{field}`" in docs, field


def test_licence_and_package_metadata() -> None:
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    meta = metadata("itam-tgstats")
    assert meta["License-Expression"] == "MIT"
    assert meta["Author"] or meta["Author-email"]
    assert meta.get_all("Project-URL")


# Links, anchors, `make` targets and `tgstats` commands the pages name: they all exist.

FENCED = re.compile(r"^(```+|~~~+)[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
LINK = re.compile(r"\]\(<?([^)\s>]+)>?(?:[ \t]+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
SHELL_BREAKS = {"&&", "||", "|", ";", ">", "<", "2>", ">>"}


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lower-cased, punctuation dropped, spaces
    as hyphens (`## The 15-minute cadence` → `the-15-minute-cadence`)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every `#fragment` a page answers to: its headings' slugs (a repeated one gains -1,
    -2 …) and explicit `id`/`name` attributes."""
    seen: dict[str, int] = {}
    found = set(re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", text))
    for heading in HEADING.findall(FENCED.sub("", text)):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path, root: Path, present: set[Path]) -> list[str]:
    """The relative links of `page` that lead nowhere: a file or folder not in `present`
    (what a clone holds), outside `root`, or a `#fragment` no heading of the target has."""
    text = page.read_text()
    prose = INLINE_CODE.sub("", FENCED.sub("", text))
    broken = []
    for target in LINK.findall(prose):
        if SCHEME.match(target):
            continue  # https:, mailto: …: not ours to check
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        missing = not resolved.is_relative_to(root) or resolved not in present
        if missing or (
            fragment and resolved.suffix == ".md" and fragment not in anchors(resolved.read_text())
        ):
            broken.append(target)
    return broken


def clone_contents() -> set[Path]:
    """The files git tracks, and every folder above them: what a fresh clone holds."""
    present = set()
    for path in tracked_files():
        present.add(path.resolve())
        present.update(p.resolve() for p in path.parents if p.is_relative_to(REPO))
    return present


def test_every_relative_link_and_anchor_resolves() -> None:
    present = clone_contents() | {page.resolve() for page in pages()}  # new pages not yet added
    broken = {
        str(page.relative_to(REPO)): bad
        for page in pages()
        if (bad := broken_links(page, REPO.resolve(), present))
    }
    assert broken == {}


def code_texts(text: str) -> list[str]:
    """What a page shows as code: each line of a fenced block, each inline code span."""
    fenced = [line for _, block in FENCED.findall(text) for line in block.splitlines()]
    return fenced + [span for _, span in INLINE_CODE.findall(FENCED.sub("", text))]


def named_make_targets(text: str) -> set[str]:
    return {
        target
        for code in code_texts(text)
        for target in re.findall(r"(?:^|[\s;&|(])make[ \t]+([A-Za-z][\w-]*)", code)
    }


def named_tgstats(text: str) -> set[tuple[str, str]]:
    """(command, option) pairs the code on a page names: `tgstats show --json` gives
    ("show", ""), ("show", "--json"); `tgstats --version` gives ("", "--version")."""
    named = set()
    for code in code_texts(text):
        words = code.split()
        for i, word in enumerate(words):
            following = words[i + 1 :]
            if word.rsplit("/", 1)[-1] != "tgstats" or not following:
                continue
            command = following[0] if re.fullmatch(r"[a-z][a-z-]*", following[0]) else ""
            if command == "tgstats" or (not command and not following[0].startswith("-")):
                continue  # a compose service called tgstats, or `tgstats …`
            named.add((command, ""))
            for rest in following[1 if command else 0 :]:
                if rest in SHELL_BREAKS or rest.startswith("#"):
                    break
                if rest.startswith("-"):
                    named.add((command, rest.split("=", 1)[0]))
    return named


def make_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)[ \t]*:(?!=)", makefile, re.MULTILINE))


def cli_options() -> dict[str, set[str]]:
    """Each command of the Typer app ("" for the app itself) → the options it accepts."""
    import typer.main

    group = typer.main.get_command(app)  # Typer's own click: reached through the objects
    root = group.context_class(group, info_name="tgstats", **group.context_settings)
    options = {}
    for name, command in {"": group, **getattr(group, "commands", {})}.items():
        accepted = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        context = root if command is group else command.context_class(command, parent=root)
        help_option = command.get_help_option(context)
        options[name] = accepted | set(help_option.opts if help_option else ())
    return options


def unknown_names(text: str, targets: set[str], options: dict[str, set[str]]) -> list[str]:
    unknown = [f"make {t}" for t in sorted(named_make_targets(text)) if t not in targets]
    for command, option in sorted(named_tgstats(text)):
        if command not in options or (option and option not in options[command]):
            unknown.append(f"tgstats {command} {option}".replace("  ", " ").strip())
    return unknown


def test_every_make_target_and_tgstats_command_the_pages_name_exists() -> None:
    targets, options = make_targets(), cli_options()
    assert {"run", "test", "check", "image-check"} <= targets
    assert {"collect", "show", "session"} <= options.keys()
    readme = (REPO / "README.md").read_text()
    assert {"run", "test"} <= named_make_targets(readme)  # the two commands, named
    assert {("collect", "--loop"), ("show", "--check"), ("session", "--write-env")} <= (
        named_tgstats(readme)
    )
    unknown = {
        str(page.relative_to(REPO)): bad
        for page in pages()
        if (bad := unknown_names(page.read_text(), targets, options))
    }
    assert unknown == {}
    # An option the README names on its own (`--dry-run`) is one of a tgstats command's.
    alone = {
        span.split()[0]
        for span in code_texts(readme)
        if re.fullmatch(r"--[a-z][a-z-]*( [A-Z]+)?", span)
    }
    assert alone <= set().union(*options.values()), alone - set().union(*options.values())


def test_the_readme_is_a_short_page_that_links_every_docs_page() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 220
    linked = {(REPO / target.partition("#")[0]).resolve() for target in LINK.findall(readme)}
    for page in sorted((REPO / "docs").glob("*.md")):
        assert page.resolve() in linked, page.name
    for section in ("## Quick start", "## The session string", "## Configuration",
                    "## Commands", "## Exit codes", "## Documentation"):  # fmt: skip
        assert f"\n{section}\n" in readme, section
    assert "docker compose up -d --wait" in readme
    # short cells: the long explanations live in docs/
    for row in re.findall(r"^\| `(?:tgstats|TG_|REDIS_|LOG_).*\|$", readme, re.MULTILINE):
        assert len(row) <= 160, row


def test_the_link_checker_finds_what_is_broken(tmp_path: Path) -> None:
    assert github_slug("The 15-minute cadence") == "the-15-minute-cadence"
    assert github_slug("In the site's existing stack, in place of the old worker") == (
        "in-the-sites-existing-stack-in-place-of-the-old-worker"
    )
    assert github_slug("`tg:media:<id>:<size type>` (images, with `TG_MEDIA_DOWNLOAD`)") == (
        "tgmediaidsize-type-images-with-tg_media_download"
    )
    assert github_slug("`tgstats show`") == "tgstats-show"
    assert anchors("# A\n## Same\n```\n# not a heading\n```\n## Same\n") == {
        "a", "same", "same-1",
    }  # fmt: skip
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B\n## Part two\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/b.md) [ok](docs/b.md#part-two) [ok](#top) [ok](https://x.org/#y)\n"
        "# Top\n`[not a link](nowhere.md)`\n```\n[nor this](gone.md)\n```\n"
        "[gone](docs/c.md) [no anchor](docs/b.md#part-three) [out](../outside.md)\n"
        "[self](#nothing)\n"
    )
    present = {p.resolve() for p in tmp_path.rglob("*")}
    assert broken_links(page, tmp_path.resolve(), present) == [
        "docs/c.md", "docs/b.md#part-three", "../outside.md", "#nothing",
    ]  # fmt: skip


def test_the_name_checker_finds_what_does_not_exist() -> None:
    text = (
        "Run `make run`, then `make nothere`.\n"
        "```bash\nmake test && .venv/bin/tgstats collect --dry-run  # --not-checked\n"
        "docker compose exec tgstats tgstats show --json\ntgstats frobnicate\n```\n"
        "`tgstats session --nope`, `tgstats --version`, `tgstats …`\n"
    )
    assert named_make_targets(text) == {"run", "nothere", "test"}
    assert unknown_names(text, make_targets(), cli_options()) == [
        "make nothere", "tgstats frobnicate", "tgstats session --nope",
    ]  # fmt: skip
