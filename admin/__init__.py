"""The admin web app: presets and channel bindings for team admins, ranking review and labels for reviewers,
a rerank playground and an overview. Server-rendered (Jinja), no external assets; every route needs a login."""

from admin.app import create_admin_app

__all__ = ["create_admin_app"]
