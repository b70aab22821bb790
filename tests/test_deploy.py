"""The container's pieces agree: crontab schedule, console script, compose stack, ignores."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from datetime import datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import compose
from cronsim import CronSim

from itam_tgstats.commands import container, schedule

REPO = Path(__file__).resolve().parent.parent


def scripts() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(project["project"]["scripts"])


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def stage(name: str) -> str:
    """The text of one build stage of the Dockerfile."""
    return dockerfile().split(f" AS {name}\n", 1)[1].split("\nFROM ", 1)[0]


def test_the_image_ships_the_repos_crontab_and_tests_every_schedule_at_build() -> None:
    """The top-level crontab runs at the default interval; the others are made at start."""
    [job] = schedule.job_lines((REPO / "crontab").read_text())
    assert job == container.crontab_text(900).strip()
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    assert "exec /usr/local/bin/python -m itam_tgstats.commands.container" in entrypoint
    assert 'exec "$@"' in entrypoint
    runtime = stage("runtime")
    assert f"COPY crontab {schedule.SHIPPED_CRONTAB}" in runtime
    # the shipped file is the one generated for 900 s, to the byte, and supercronic reads it
    assert '--print-crontab)" \\\n      /usr/local/share/tgstats/crontab' in runtime
    assert f"/usr/local/bin/supercronic -test {schedule.SHIPPED_CRONTAB}" in runtime
    assert "/usr/local/bin/supercronic -test /tmp/tgstats.crontab" in runtime
    # the init's private directory, and where a deployer mounts a crontab
    assert f"install -d -o 10001 -g 10001 -m 0700 {schedule.RUN_DIR}" in runtime
    assert f"install -d -m 0755 {schedule.MOUNTED_CRONTAB.parent}" in runtime
    # supercronic by absolute path, where the image puts it
    assert container.SUPERCRONIC == "/usr/local/bin/supercronic"
    assert f"COPY --from=supercronic {container.SUPERCRONIC} {container.SUPERCRONIC}" in runtime
    fields = job.split()
    assert " ".join(fields[:5]) == "*/15 * * * *"
    assert fields[5:] == ["exec", "tgstats", "collect"]
    it = CronSim(" ".join(fields[:5]), datetime(2026, 11, 23, 9, 59))
    assert [(t.hour, t.minute) for t in (next(it) for _ in range(4))] == [
        (10, 0), (10, 15), (10, 30), (10, 45),
    ]  # fmt: skip


def test_the_health_check_reads_the_inits_markers_where_the_init_writes_them() -> None:
    check = (REPO / "docker" / "healthcheck.sh").read_text()
    assert f"run={schedule.RUN_DIR}\n" in check
    assert '[ -e "$run/starting" ]' in check and '"$run/problem"' in check
    assert check.rstrip().endswith("exec tgstats show --check")
    runtime = stage("runtime")
    assert "COPY docker/healthcheck.sh /usr/local/bin/tgstats-healthcheck" in runtime


def test_the_images_commands_are_the_installed_console_script() -> None:
    assert scripts() == {"tgstats": "itam_tgstats.cli:main"}
    assert re.search(r'^  CMD \["tgstats-healthcheck"\]$', dockerfile(), re.MULTILINE)
    check = (REPO / "docker" / "healthcheck.sh").read_text()
    command = re.search(r"^exec (\S+) show --check$", check, re.MULTILINE)
    assert command is not None and command.group(1) in scripts()
    assert container.PASS_COMMAND[0] in scripts()
    assert re.search(r"^USER 10001:10001$", dockerfile(), re.MULTILINE)
    assert 'ENTRYPOINT ["/usr/local/bin/tgstats-entrypoint"]' in dockerfile()


def test_the_health_check_turns_healthy_or_not_soon_after_the_pass_at_start() -> None:
    """Docker 20.10 has no --start-interval: a check every 10 s from the start, whose
    first run waits for the pass at start; no start period, one failure counts."""
    line = re.search(r"^HEALTHCHECK (.*)\\$", dockerfile(), re.MULTILINE)
    assert line is not None
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", line.group(1)))
    # the first check, 10 s after the start, sees a pass at start that ended before
    assert go_duration_seconds(options["interval"]) <= 10
    # no start period: the first result counts, failure included (retries 1)
    assert go_duration_seconds(options.get("start-period", "0s")) == 0
    assert options["retries"] == "1"
    # the waiting check outlasts the start: 30 s for Redis + TG_TIMEOUT's default 120 s
    assert go_duration_seconds(options["timeout"]) >= 30 + 120 + 30
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


def test_the_deployment_pages_drop_in_block_works_with_a_redis_without_health_check(
    tmp_path: Path,
) -> None:
    deploy = (REPO / "docs" / "deployment.md").read_text()
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


def test_make_clean_removes_all_make_and_ci_create_and_nothing_else(tmp_path: Path) -> None:
    """What `make setup`, the suite, `.ci/run` and the types check leave in a checkout."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        if (REPO / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, tmp_path / name)
    made = [
        ".venv/bin/python", ".ci-venv/bin/python", ".pytest_cache/v", ".mypy_cache/3.12/x",
        ".ruff_cache/0.1/x", ".hypothesis/examples/x", "itam_tgstats.egg-info/PKG-INFO",
        "itam_tgstats/__pycache__/cli.pyc", "tests/store/__pycache__/x.pyc", "build/lib/x",
        "dist/x.whl", ".types-check/node_modules/x", "node_modules/x", "unknown_errors.txt",
    ]  # fmt: skip
    kept = [".env", "secret.txt", "my.session"]
    for name in made + kept:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    result = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True,
                            check=False, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    left = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert left == {n for n in tracked if (REPO / n).is_file()} | set(kept)
    # every ignored pattern but the secrets' names is something `make clean` removes
    ignored = [ln.rstrip("/") for ln in (REPO / ".gitignore").read_text().splitlines()
               if ln and not ln.startswith(("#", "!"))]  # fmt: skip
    secrets = {".env", "*.session", "*.session-journal", "secret.txt", ".env.*"}
    for pattern in set(ignored) - secrets:
        assert any(fnmatch(part, pattern) for m in made for part in m.split("/")), pattern
