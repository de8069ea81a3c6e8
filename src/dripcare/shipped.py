"""Files shipped inside the package: the Alembic migrations and the default campaigns.

Their sources are the checkout's top-level alembic/ and templates/emails/; src/dripcare/shipped/
links to them, so an editable install reads the checkout and a wheel carries copies. Either
way they are found through the package, never through the working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _shipped(name: str) -> Path:
    found = files("dripcare") / "shipped" / name
    if not isinstance(found, Path) or not found.is_dir():
        # Alembic and the campaign loader need real directories, not a zip archive's entries.
        raise RuntimeError(
            f"dripcare's {name} are missing from {found}: reinstall dripcare from a wheel "
            "or a checkout (pip install dripcare-*.whl, or pip install -e .)"
        )
    return found


def migrations_dir() -> Path:
    """Alembic's script directory (env.py, versions/)."""
    return _shipped("migrations")


def campaigns_dir() -> Path:
    """The default campaigns, one directory per campaign with its campaign.toml."""
    return _shipped("campaigns")
