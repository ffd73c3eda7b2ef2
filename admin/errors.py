"""The admin app's configuration error, apart from admin.app so that the modules it assembles can raise it."""

from __future__ import annotations


class AdminConfigError(ValueError):
    """The admin app cannot start safely with these settings."""
