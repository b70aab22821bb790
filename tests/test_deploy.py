"""The container's pieces agree: crontab schedule, console script, compose stack, ignores."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from datetime import datetime
from pathlib import Path

import compose
from cronsim import CronSim

REPO = Path(__file__).resolve().parent.parent


def scripts() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(project["project"]["scripts"])


def crontab_entries() -> list[str]:
    lines = (REPO / "crontab").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_crontab_runs_collect_every_quarter_hour() -> None:
    [entry] = crontab_entries()
    fields = entry.split()
    schedule, command = " ".join(fields[:5]), fields[5:]
    assert command == ["tgstats", "collect"]
    assert not re.fullmatch(r"[\d*/,-]+", fields[5])  # a sixth field would be read as a year
    it = CronSim(schedule, datetime(2026, 11, 23, 9, 59))
    fired = [next(it) for _ in range(8)]
    assert [(t.hour, t.minute) for t in fired] == [
        (10, 0), (10, 15), (10, 30), (10, 45), (11, 0), (11, 15), (11, 30), (11, 45),
    ]  # fmt: skip


def test_the_images_commands_are_the_installed_console_script() -> None:
    assert scripts() == {"tgstats": "itam_tgstats.cli:main"}
    dockerfile = (REPO / "Dockerfile").read_text()
    healthcheck = re.search(r'CMD \["([^"]+)", "show", "--check"\]', dockerfile)
    assert healthcheck is not None and healthcheck.group(1) in scripts()
    assert crontab_entries()[0].split()[5] in scripts()
    assert "COPY crontab /etc/tgstats/crontab" in dockerfile
    assert "supercronic -test /etc/tgstats/crontab" in dockerfile
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    assert "/etc/tgstats/crontab" in entrypoint and 'exec "$@"' in entrypoint
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["/usr/local/bin/tgstats-entrypoint"]' in dockerfile


def test_compose_stack_waits_for_redis_and_outlasts_a_pass() -> None:
    binary = Path(compose.__file__).with_name("docker-compose")
    result = subprocess.run(
        [str(binary), "-f", str(REPO / "compose.yaml"), "config", "--format", "json"],
        capture_output=True, text=True, check=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    config = json.loads(result.stdout)
    redis_service = config["services"]["redis"]
    collector = config["services"]["tgstats"]
    assert redis_service["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert collector["depends_on"]["redis"]["condition"] == "service_healthy"
    assert go_duration_seconds(collector["stop_grace_period"]) > 120  # TG_TIMEOUT's default
    assert collector["environment"]["REDIS_URL"] == "redis://redis:6379/0"


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
    assert "itam_tgstats/cli.py" in names


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
