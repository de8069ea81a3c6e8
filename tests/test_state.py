"""DRIPCARE_STATE_DIR: every file dripcare writes goes there, never to the working directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from dripcare.cli import main
from dripcare.config import Settings, get_settings
from dripcare.errors import UserError
from dripcare.sending.transports import CaptureTransport, transport_from_url
from dripcare.state import state_dir


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DRIPCARE_* variables: the defaults as an operator's machine has them."""
    for name in [n for n in os.environ if n.startswith("DRIPCARE_")]:
        monkeypatch.delenv(name)


def test_embedded_defaults_live_in_the_state_dir(no_settings: None, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    assert settings.database_url == f"sqlite:///{tmp_path}/state/dripcare.db"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path}/state/broker.db"
    outbox = transport_from_url(settings.smtp_url)
    assert isinstance(outbox, CaptureTransport) and outbox.directory == tmp_path / "state/outbox"


def test_development_defaults_stay_in_var(no_settings: None) -> None:
    settings = Settings()
    assert settings.state_dir == Path("var")
    assert settings.database_url == "sqlite:///var/dripcare.db"
    assert settings.broker_url == "sqla+sqlite:///var/broker.db"
    assert settings.smtp_url == "capture://var/outbox"


def test_urls_that_are_set_win_over_the_state_dir(no_settings: None, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, smtp_url="console://", broker_url="redis://r/0")
    assert (settings.smtp_url, settings.broker_url) == ("console://", "redis://r/0")


def test_an_unwritable_state_dir_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(
        UserError, match=r"cannot write to the state directory .*DRIPCARE_STATE_DIR"
    ):
        state_dir(Settings(state_dir=blocker / "state"))


def test_beat_refuses_a_state_dir_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DRIPCARE_STATE_DIR", str(tmp_path / "a-file" / "state"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["beat"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "set DRIPCARE_STATE_DIR" in result.stderr


def test_preview_writes_into_the_state_dir_by_default(
    no_settings: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRIPCARE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["preview", "microneedling", "day-3"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "state" / "preview").iterdir()) == [
        "day-3.html",
        "day-3.txt",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
