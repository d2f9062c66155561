"""Alembic environment: runs the migrations on the connection handed over by ``bradley.serve.db.migrate``."""

from __future__ import annotations

from alembic import context


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the migrations through bradley.serve.db.migrate(engine)")
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if getattr(context, "config", None) is not None:  # set only while Alembic runs this file, not on a plain import
    run_migrations()
