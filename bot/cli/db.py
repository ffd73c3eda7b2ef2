"""`ragbot db`: database maintenance."""

from __future__ import annotations

from bot.cli.console import out


def upgrade() -> None:
    """Apply database migrations (DATABASE_URL). Other commands also do this on first use."""
    import store
    from bot.app import open_components

    with open_components() as parts:
        _ = parts.engine  # opening the database applies the migrations
        out.print(f"Database is up to date: {store.mask_url(parts.settings.database_url)}")
