"""The Prometheus alert rules shipped in deploy/prometheus: valid, tested, and about metrics
that GET /metrics really exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dripcare.web.app import create_app
from tests.conftest import IN_CI, configure

RULES_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
RULES = RULES_DIR / "dripcare-rules.yml"
RULE_TESTS = RULES_DIR / "dripcare-rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        if IN_CI:
            pytest.fail("promtool is missing: CI installs Debian's `prometheus` (.ci/run)")
        pytest.skip("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)")
    return subprocess.run([path, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_the_rules_use_is_exposed_by_the_api(
    database: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configure(
        monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=database, DRIPCARE_METRICS_REDIS_URL=redis_url
    )
    with TestClient(create_app()) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    exposed = {
        sample.name
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    rules = yaml.safe_load(RULES.read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in expressions for name in re.findall(r"\bdripcare_\w+", expr)}
    assert len(used) >= 8
    assert used <= exposed, f"not exposed by /metrics: {sorted(used - exposed)}"
