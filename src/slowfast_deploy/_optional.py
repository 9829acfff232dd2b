"""Import an optional dependency or raise an error naming the pip extra that provides it."""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

from slowfast_deploy.errors import BackendUnavailableError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """``importlib.import_module(module)``, or a one-line error with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise BackendUnavailableError(
            f"{purpose} needs the Python package '{module}', which is not installed: "
            f"pip install 'slowfast-deploy[{extra}]'"
        ) from err


def package_version() -> str:
    """The installed slowfast-deploy version (``0.0.0`` when run from a source tree)."""
    try:
        return version("slowfast-deploy")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0"
