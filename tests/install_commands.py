"""How dripcare is built and installed outside a checkout.

The Dockerfile runs these commands and test_wheel runs them too (test_dockerfile checks that
the Dockerfile still says them), so the image installs the way the test proved to work.
"""

from __future__ import annotations

# In a directory holding pyproject.toml, with requirements-build.lock's setuptools installed.
BUILD_WHEEL = ("pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir")
# Exactly the locked dependencies, each file checked against its hash.
INSTALL_LOCKED = ("pip", "install", "--require-hashes", "-r")
# The wheel alone: its dependencies are already there, from the lock.
INSTALL_WHEEL = ("pip", "install", "--no-deps")
# Then the build tools that came with the interpreter go: dripcare must not need them to run.
REMOVE_BUILD_TOOLS = ("pip", "uninstall", "--yes", "setuptools", "wheel")


def shell(command: tuple[str, ...]) -> str:
    """The command as the Dockerfile writes it."""
    return " ".join(command)
