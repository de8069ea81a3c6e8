"""The state directory (`DRIPCARE_STATE_DIR`): the one place dripcare's processes write files.

In a container the working directory belongs to root and the process does not, so nothing may
be written there; `make run` keeps the default, `var/` in the checkout.
"""

from __future__ import annotations

import os
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
