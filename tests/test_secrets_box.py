"""Secrets at rest: sealed with Fernet, or named by an environment variable."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from dripcare import secrets_box
from dripcare.config import Settings
from dripcare.secrets_box import SecretUnavailable

SMTP = "smtp://clinic:s3cret@mail.clinic.example:587?starttls=true"


def settings(**values: str) -> Settings:
    return Settings(secret_key="k" * 40, **values)  # type: ignore[arg-type]


def test_a_sealed_secret_opens_and_does_not_show_the_password() -> None:
    sealed = secrets_box.seal(settings(), SMTP)
    assert sealed.startswith("fernet:") and "s3cret" not in sealed
    assert secrets_box.open_secret(settings(), sealed) == SMTP


def test_another_secret_key_cannot_open_it_and_says_what_to_do() -> None:
    sealed = secrets_box.seal(settings(), SMTP)
    with pytest.raises(SecretUnavailable, match="restore the key it was sealed with"):
        secrets_box.open_secret(Settings(secret_key="x" * 40), sealed)


def test_an_environment_reference_is_stored_as_is_and_read_when_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = secrets_box.seal(settings(), "env:CLINIC_7_SMTP_URL")
    assert stored == "env:CLINIC_7_SMTP_URL"
    with pytest.raises(SecretUnavailable, match="CLINIC_7_SMTP_URL is not set"):
        secrets_box.open_secret(settings(), stored)
    monkeypatch.setenv("CLINIC_7_SMTP_URL", SMTP)
    assert secrets_box.open_secret(settings(), stored) == SMTP


def test_rotation_new_key_first_old_keys_still_open_then_reseal() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = secrets_box.seal(settings(secrets_key=old), SMTP)
    rotated = settings(secrets_key=f"{new},{old}")
    assert secrets_box.open_secret(rotated, sealed) == SMTP
    resealed = secrets_box.reseal(rotated, sealed)
    assert secrets_box.open_secret(settings(secrets_key=new), resealed) == SMTP


def test_a_malformed_secrets_key_is_named() -> None:
    with pytest.raises(SecretUnavailable, match="DRIPCARE_SECRETS_KEY is not a list of Fernet"):
        secrets_box.seal(settings(secrets_key="not-a-key"), SMTP)


def test_reseal_secrets_lets_the_old_key_go(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from dripcare import db
    from dripcare.cli import main
    from tests.factories import make_clinic

    def use_keys(keys: str) -> None:
        monkeypatch.setenv("DRIPCARE_SECRETS_KEY", keys)
        db.reset()

    def cli(*args: str) -> str:
        result = CliRunner().invoke(main, ["clinic", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(old)
    clinic = str(make_clinic())
    cli("transport", "--clinic", clinic, "--smtp-url", SMTP)
    cli("dkim", "--clinic", clinic)
    use_keys(f"{new},{old}")

    assert cli("reseal-secrets").startswith("2 secrets sealed with the newest key")

    use_keys(new)
    assert "smtp://clinic:***@mail.clinic.example:587" in cli("transport", "--clinic", clinic)
