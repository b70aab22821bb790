"""The container's pieces agree: crontab schedule, console script, compose stack, ignores."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import compose
from cronsim import CronSim

from itam_tgstats.commands import container

REPO = Path(__file__).resolve().parent.parent


def scripts() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(project["project"]["scripts"])


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def stage(name: str) -> str:
    """The text of one build stage of the Dockerfile."""
    return dockerfile().split(f" AS {name}\n", 1)[1].split("\nFROM ", 1)[0]


def test_the_schedule_is_made_from_the_interval_at_start_and_tested_at_build() -> None:
    assert not (REPO / "crontab").exists()  # no baked schedule to drift from the variable
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    assert "exec /usr/local/bin/python -m itam_tgstats.commands.container" in entrypoint
    assert 'exec "$@"' in entrypoint
    runtime = stage("runtime")
    assert "python -m itam_tgstats.commands.container --print-crontab" in runtime
    assert "/usr/local/bin/supercronic -test" in runtime
    # supercronic by absolute path, where the image puts it
    assert container.SUPERCRONIC == "/usr/local/bin/supercronic"
    assert f"COPY --from=supercronic {container.SUPERCRONIC} {container.SUPERCRONIC}" in runtime
    [entry] = container.crontab_text(900).splitlines()
    fields = entry.split()
    assert " ".join(fields[:5]) == "*/15 * * * *"
    assert fields[5:] == ["exec", "tgstats", "collect"]
    it = CronSim(" ".join(fields[:5]), datetime(2026, 11, 23, 9, 59))
    assert [(t.hour, t.minute) for t in (next(it) for _ in range(4))] == [
        (10, 0), (10, 15), (10, 30), (10, 45),
    ]  # fmt: skip


def test_the_images_commands_are_the_installed_console_script() -> None:
    assert scripts() == {"tgstats": "itam_tgstats.cli:main"}
    healthcheck = re.search(r'CMD \["([^"]+)", "show", "--check"\]', dockerfile())
    assert healthcheck is not None and healthcheck.group(1) in scripts()
    assert container.PASS_COMMAND[0] in scripts()
    assert re.search(r"^USER 10001:10001$", dockerfile(), re.MULTILINE)
    assert 'ENTRYPOINT ["/usr/local/bin/tgstats-entrypoint"]' in dockerfile()


def test_the_health_check_turns_healthy_soon_after_the_pass_at_start() -> None:
    line = re.search(r"^HEALTHCHECK (.*)\\$", dockerfile(), re.MULTILINE)
    assert line is not None
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", line.group(1)))
    # The start period covers the pass at start (TG_TIMEOUT's default, 120 s) …
    assert go_duration_seconds(options["start-period"]) > 120
    # … and a success is seen soon after it, not at the first scheduled pass.
    assert go_duration_seconds(options["interval"]) <= 30
    assert "--start-interval" not in line.group(1)  # unknown to Docker Engine before 25


def test_the_image_builds_with_the_classic_builder_and_pulls_only_supercronic() -> None:
    text = dockerfile()
    # BuildKit would pull a `# syntax=` frontend at build time
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    assert "--mount" not in text and "<<" not in text  # BuildKit-only RUN features
    supercronic = stage("supercronic")
    # The classic builder leaves TARGETARCH empty.
    assert '"${TARGETARCH:-$(dpkg --print-architecture)}"' in supercronic
    args = dict(re.findall(r"^ARG (SUPERCRONIC_\w+)=(\S*)$", supercronic, re.MULTILINE))
    assert args["SUPERCRONIC_URL"] == ""
    assert '"${SUPERCRONIC_URL:-https://github.com/aptible/supercronic/releases/download/' in (
        supercronic
    )
    version = tuple(int(n) for n in args["SUPERCRONIC_VERSION"].removeprefix("v").split("."))
    assert version >= (0, 2, 36)  # supercronic as PID 1 re-executed itself before that
    assert re.fullmatch(r"[0-9a-f]{40}", args["SUPERCRONIC_SHA1_AMD64"])
    assert re.fullmatch(r"[0-9a-f]{40}", args["SUPERCRONIC_SHA1_ARM64"])
    assert "sha1sum -c -" in supercronic


def test_no_layer_copies_files_only_to_delete_them() -> None:
    runtime = stage("runtime")
    copied = re.findall(r"^COPY (?:--from=\S+ )?\S+ (\S+)$", runtime, re.MULTILINE)
    for run in re.findall(r"^RUN (.*?)(?<!\\)$", runtime, re.MULTILINE | re.DOTALL):
        for target in copied:
            assert f"rm -rf {target}" not in run and f"rm {target}" not in run, target
    assert "COPY --from=build /install /usr/local" in runtime


def test_compose_stack_waits_for_redis_and_stops_within_dockers_default() -> None:
    config = compose_config(REPO / "compose.yaml")
    redis_service = config["services"]["redis"]
    collector = config["services"]["tgstats"]
    assert redis_service["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert collector["depends_on"]["redis"]["condition"] == "service_healthy"
    # A pass gets SIGTERM and ends in a second or two: Docker's default 10 s is enough.
    assert go_duration_seconds(collector.get("stop_grace_period", "10s")) <= 10
    assert collector["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def readme_section(title: str) -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split(f"\n{title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_drop_in_block_works_with_a_redis_without_health_check(
    tmp_path: Path,
) -> None:
    deploy = readme_section("## Deploy")
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", deploy, re.DOTALL) if "depends_on" in b]
    (tmp_path / "itam-tgstats").mkdir()
    (tmp_path / ".env").write_text("TG_API_ID=1\n")
    stack = "services:\n  redis:\n    image: redis:7-alpine\n" + block
    stack += "networks:\n  itam-network:\n"
    (tmp_path / "compose.yaml").write_text(stack)
    config = compose_config(tmp_path / "compose.yaml")
    worker = config["services"]["telegram-worker"]
    assert worker["depends_on"]["redis"]["condition"] == "service_started"
    assert "stop_grace_period" not in worker
    for step in ("docker compose stop telegram-worker", "docker compose restart",
                 "docker compose up -d", "Compose 2.24", "tgstats collect"):  # fmt: skip
        assert step in deploy, step


def compose_config(path: Path) -> dict[str, Any]:
    binary = Path(compose.__file__).with_name("docker-compose")
    result = subprocess.run(
        [str(binary), "-f", str(path), "config", "--format", "json"],
        capture_output=True, text=True, check=False, timeout=60, cwd=path.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_ci_runs_the_image_check_with_the_build_arguments_it_is_given() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^image-check:\n\tscripts/image-check$", makefile, re.MULTILINE)
    ci = (REPO / ".ci" / "run").read_text()
    assert "make check VENV=.ci-venv" in ci
    assert 'IMAGE_BUILD_ARGS="$TGSTATS_KIT_BUILD_ARGS" make image-check' in ci
    check = (REPO / "scripts" / "image-check").read_text()
    assert "${IMAGE_BUILD_ARGS:-}" in check
    # the stand-in Telegram only ever mounted, read-only
    assert '-v "$REPO/tests:/stand-in/tests:ro"' in check
    assert "tests" in (REPO / ".dockerignore").read_text().split()


def go_duration_seconds(text: str) -> float:
    """`2m30s` → 150.0 (compose prints durations the Go way)."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert "".join(n + u for n, u in parts) == text, text
    return sum(float(n) * units[u] for n, u in parts)


def test_dockerignore_keeps_secrets_and_noise_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".git", "tests", ".venv", "**/__pycache__"} <= ignored
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_the_image_build_stage_has_every_file_the_package_build_needs(tmp_path: Path) -> None:
    """`pip wheel .` in the build stage sees only what its COPY lines bring (readme, licence…)."""
    import shutil
    import sys
    import zipfile

    dockerfile = (REPO / "Dockerfile").read_text()
    build_stage = dockerfile.split(" AS build", 1)[1].split("\nFROM ", 1)[0]
    context = tmp_path / "src"
    context.mkdir()
    for line in build_stage.splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, dest = line.split()[1:]
        for source in sources:
            target = context / (dest if dest not in ("./", ".") else source)
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(REPO / source, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "w"), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [wheel] = (tmp_path / "w").glob("itam_tgstats-*.whl")
    with zipfile.ZipFile(wheel) as built:
        names = built.namelist()
    # setuptools only warns when a licence file is missing: the wheel must carry it
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    # every module of the package, its folders' too (the image installs the wheel)
    package = REPO / "itam_tgstats"
    modules = {f"itam_tgstats/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))


def test_secrets_the_readme_creates_are_git_ignored() -> None:
    names = ["secret.txt", ".env", ".env.local", ".env.production", ".ci-venv/x"]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *names],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert sorted(ignored) == sorted(names)
    kept = subprocess.run(
        ["git", "check-ignore", "--no-index", ".env.example"], cwd=REPO, check=False
    )
    assert kept.returncode == 1  # not ignored


def test_run_installs_only_what_running_needs_and_ci_keeps_its_own_venv() -> None:
    makefile = (REPO / "Makefile").read_text()
    run_rule = re.search(r"^run: (.*)$", makefile, re.MULTILINE)
    assert run_rule is not None
    assert run_rule.group(1).split() == ["$(VENV)/.run-installed", "redis-server"]
    run_install = makefile.split("$(VENV)/.run-installed: pyproject.toml", 1)[1].split("\n\n")[0]
    assert "-e ." in run_install and "[dev]" not in run_install and "[test]" not in run_install
    ci = (REPO / ".ci" / "run").read_text()
    assert "VENV=.ci-venv" in ci
    assert not re.search(r"rm -rf \.venv\b", ci)
