"""docker-compose.yml as Compose reads it: YAML with merge keys, .env files, interpolation.

Only what this project's compose file uses is supported; anything else fails loudly, so a
change to the file cannot be silently misread by the test that runs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
_VARIABLE = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class InterpolationError(Exception):
    """A required variable is missing: `docker compose` would refuse to start."""


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's variable substitution on one string."""
    if re.search(r"\$(?!\$|\{)", text.replace("$$", "")):
        raise ValueError(f"unsupported $NAME form in {text!r}; use ${{NAME}}")

    def substitute(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        value = variables.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and unset:
            raise InterpolationError(f"{name}: {arg}")
        if op.endswith("-") and unset:
            return arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; comments, blank lines and surrounding quotes as Compose reads them."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _interpolate_all(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolate_all(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_all(value, variables) for key, value in node.items()}
    return node


@dataclass
class Service:
    name: str
    spec: dict[str, Any]
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def profiles(self) -> list[str]:
        return list(self.spec.get("profiles", []))

    @property
    def command(self) -> list[str]:
        command = self.spec.get("command", [])
        assert isinstance(command, list), f"{self.name}: write command as a list"
        return [str(arg) for arg in command]

    @property
    def healthcheck(self) -> list[str] | None:
        """The healthcheck's command, without Compose's leading "CMD"."""
        test = self.spec.get("healthcheck", {}).get("test")
        if test is None:
            return None
        assert test[0] == "CMD", f"{self.name}: healthcheck must be the exec form [CMD, ...]"
        return [str(arg) for arg in test[1:]]

    @property
    def mounts(self) -> list[str]:
        """Container paths that are writable mounts (tmpfs, volumes)."""
        paths = [str(path).split(":")[0] for path in self.spec.get("tmpfs", [])]
        return paths + [str(volume).split(":")[1] for volume in self.spec.get("volumes", [])]


def load(env_file: Path) -> dict[str, Service]:
    """The services with their environment: env_file entries, then `environment`, interpolated
    with the variables of `env_file` (Compose's .env beside the compose file)."""
    variables = read_env_file(env_file)
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    services = {}
    for name, spec in raw["services"].items():
        spec = _interpolate_all(spec, variables)
        environment: dict[str, str] = {}
        for path in spec.get("env_file", []):
            assert path == ".env", f"{name}: env_file {path!r}; the test only knows .env"
            environment.update(read_env_file(env_file))
        environment.update({key: str(value) for key, value in spec.get("environment", {}).items()})
        services[name] = Service(name, spec, environment)
    return services


def required_variables() -> set[str]:
    """Variables the compose file refuses to start without (${NAME:?...})."""
    return set(re.findall(r"\$\{(\w+):?\?", COMPOSE_FILE.read_text()))
