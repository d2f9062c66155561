"""Alembic migrations of the arena service's schema (applied by :func:`bradley.serve.db.migrate`)."""
