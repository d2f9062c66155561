"""Alembic revisions of the arena service's schema, oldest first."""
