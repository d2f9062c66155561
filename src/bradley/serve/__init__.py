"""The arena web service behind ``bradley serve`` (optional: ``pip install 'bradley[serve]'``).

Annotators judge pairs of outputs chosen by the active sampler, votes are kept
in a database (SQLite by default, PostgreSQL by URL) and a live leaderboard is
computed with :func:`bradley.leaderboard`. Nothing in the core imports this
package; :func:`create_app` imports FastAPI and SQLAlchemy lazily.

See ``docs/serve-api.md`` for the JSON API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(db_url: str, admin_token: str | None = None, **options: Any) -> FastAPI:
    """Build the FastAPI application (see :func:`bradley.serve.app.create_app`)."""
    from bradley.serve.app import create_app as _create_app

    return _create_app(db_url, admin_token=admin_token, **options)
