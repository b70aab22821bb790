"""The login's questions in a terminal: prompts on stderr, answers from stdin."""

from __future__ import annotations

import getpass
import sys

from itam_tgstats.errors import ConfigError


class TerminalPrompter:
    """Prompts on stderr, answers from stdin; secrets through getpass (never echoed)."""

    def ask(self, prompt: str) -> str:
        sys.stderr.write(f"{prompt}: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise ConfigError("no answer (end of input): run `tgstats session` in a terminal")
        return line.rstrip("\r\n")

    def secret(self, prompt: str) -> str:
        return getpass.getpass(f"{prompt}: ", stream=sys.stderr)

    def say(self, message: str) -> None:
        sys.stderr.write(f"{message}\n")
        sys.stderr.flush()
