"""The Dockerfile's shape, checked without a Docker engine (none runs in CI or here).

What is checked is what a later edit would silently lose: the build tools stay in the builder,
dependencies install from the hashed lock in a layer before the code, the process runs
unprivileged with its state dir, and the pip commands are the ones test_wheel runs.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.install_commands import (
    BUILD_WHEEL,
    INSTALL_LOCKED,
    INSTALL_WHEEL,
    REMOVE_BUILD_TOOLS,
    shell,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def _instructions(text: str) -> list[Instruction]:
    joined = re.sub(r"\\\n", " ", text)  # continuation lines
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            found.append(Instruction(keyword.upper(), " ".join(args.split())))
    return found


def _stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in _instructions((ROOT / "Dockerfile").read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def builder() -> list[Instruction]:
    return _stages()[0]


@pytest.fixture(scope="module")
def final() -> list[Instruction]:
    return _stages()[-1]


def _index(stage: list[Instruction], keyword: str, needle: str) -> int:
    matches = [i for i, ins in enumerate(stage) if ins.keyword == keyword and needle in ins.args]
    assert matches, f"no {keyword} with {needle!r} in the stage"
    return matches[0]


def _runs(stage: list[Instruction]) -> str:
    return "\n".join(ins.args for ins in stage if ins.keyword == "RUN")


def test_two_stages_on_the_slim_python_image() -> None:
    stages = _stages()
    assert len(stages) == 2
    assert stages[0][0].args == "python:3.11-slim AS builder"
    assert stages[1][0].args == "python:3.11-slim"


def test_the_builder_builds_the_wheel_with_locked_setuptools(builder: list[Instruction]) -> None:
    installs = _index(builder, "RUN", f"{shell(INSTALL_LOCKED)} requirements-build.lock")
    builds = _index(builder, "RUN", f"{shell(BUILD_WHEEL)} /wheels .")
    assert installs < builds
    copied = " ".join(ins.args for ins in builder if ins.keyword == "COPY")
    for needed in ("pyproject.toml", "README.md", "LICENSE", "alembic", "templates", "src"):
        assert needed in copied, f"the builder does not copy {needed}"


def test_the_locked_dependencies_install_before_any_code_arrives(
    final: list[Instruction],
) -> None:
    lock = _index(final, "COPY", "requirements")
    install = _index(final, "RUN", f"{shell(INSTALL_LOCKED)} ")
    wheel = _index(final, "COPY", "--from=builder")
    assert lock < install < wheel
    assert "requirements${EXTRAS:+-$EXTRAS}.lock" in final[install].args
    assert (
        f"{shell(INSTALL_WHEEL)} /tmp/wheels/dripcare-*.whl"
        in final[_index(final, "RUN", "whl")].args
    )


def test_every_extra_but_dev_has_a_lock_the_image_copies(final: list[Instruction]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"]) - {"dev"}
    copied = final[_index(final, "COPY", "requirements")].args.split()[:-1]
    assert copied == ["requirements.lock", *(f"requirements-{extra}.lock" for extra in extras)]
    assert all((ROOT / name).is_file() for name in copied)


def test_the_image_has_no_source_tree_editable_install_or_build_tools(
    final: list[Instruction],
) -> None:
    copied = [ins.args for ins in final if ins.keyword in ("COPY", "ADD")]
    assert not [c for c in copied if re.search(r"\b(src|alembic|templates)\b", c)], copied
    runs = _runs(final)
    assert not re.search(r"\s(-e|--editable)\s", runs)
    assert not re.search(r"\b(apt-get|apk|gcc|build-essential|python3-dev)\b", runs)
    assert shell(REMOVE_BUILD_TOOLS) in runs


def test_the_process_runs_as_dripcare_with_its_own_state_dir(final: list[Instruction]) -> None:
    assert "DRIPCARE_STATE_DIR=/var/lib/dripcare" in final[_index(final, "ENV", "STATE_DIR")].args
    created = final[_index(final, "RUN", "/var/lib/dripcare")].args
    assert "useradd" in created and "install -d -o dripcare -g dripcare" in created
    user = [i for i, ins in enumerate(final) if ins.keyword == "USER"]
    assert [final[i].args for i in user] == ["dripcare"]
    assert user[0] > max(i for i, ins in enumerate(final) if ins.keyword == "RUN")
    # The working directory stays root's: nothing chowns it, the process never writes there.
    workdir = final[_index(final, "WORKDIR", "/")].args
    assert workdir not in _runs(final)


def test_healthcheck_and_entrypoint_are_the_cli(final: list[Instruction]) -> None:
    healthcheck = final[_index(final, "HEALTHCHECK", "CMD")].args
    assert json.loads(healthcheck.removeprefix("CMD ")) == ["dripcare", "health", "api"]
    entrypoint = final[_index(final, "ENTRYPOINT", "dripcare")].args
    assert json.loads(entrypoint) == ["dripcare"]


def test_the_build_context_leaves_out_local_state_and_secrets() -> None:
    rules = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert rules[rules.index("*")] == "*", "everything is excluded unless named"
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}
    assert {".env", ".venv", "var", ".git", "tests"}.isdisjoint(allowed)
    copied = set()
    for stage in _stages():
        for ins in stage:
            if ins.keyword == "COPY" and not ins.args.startswith("--from"):
                copied.update(ins.args.split()[:-1])
    unsent = {path for path in copied if not any(fnmatch(path, rule) for rule in allowed)}
    assert not unsent, f"COPY of files .dockerignore leaves out: {unsent}"
