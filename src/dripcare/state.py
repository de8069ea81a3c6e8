"""The state directory (`DRIPCARE_STATE_DIR`): the one place dripcare's processes write files.

In a container the working directory belongs to root and the process does not, so nothing may
be written there; `make run` keeps the default, `var/` in the checkout.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from dripcare.config import Settings
from dripcare.errors import UserError


def state_dir(settings: Settings) -> Path:
    """The state directory, created if needed; a clear error if this user cannot write it."""
    path = settings.state_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path, exc.strerror or str(exc)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise _unwritable(path, "permission denied")
    return path


def _unwritable(path: Path, reason: str) -> UserError:
    where = path if path.is_absolute() else f"{path} (in {Path.cwd()})"
    return UserError(
        f"cannot write to the state directory {where}: {reason}; "
        "set DRIPCARE_STATE_DIR to a directory this user can write"
    )


def dev_secret(settings: Settings) -> str:
    """This install's own development secret, made on first use and kept in the state dir.

    A secret published in the source would make every development install's links work on
    every other one.
    """
    path = state_dir(settings) / "secret-key"
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(draft, path)
        draft.unlink()
    return path.read_text(encoding="ascii").strip()
