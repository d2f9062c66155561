"""``bradley serve``: the arena web service (light to import; uvicorn and FastAPI load in the runner)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Add ``bradley serve [--db URL] [--host H] [--port N] [--admin-token T]``."""
    parser = subparsers.add_parser(
        "serve", help="run the comparison arena web service (pip install 'bradley[serve]')",
        description="Collect pairwise judgments in the browser, choose the next pair actively and publish a live "
                    "leaderboard. The admin token comes from --admin-token, the BRADLEY_ADMIN_TOKEN environment "
                    "variable, or is generated on the first start and printed once.")
    parser.add_argument("--db", default="sqlite:///bradley-arena.db", metavar="URL",
                        help="database URL: sqlite:///FILE (default sqlite:///bradley-arena.db) or "
                             "postgresql+psycopg://USER:PASSWORD@HOST/DBNAME")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--admin-token", default=None, metavar="TOKEN",
                        help="admin bearer token, 32 to 256 characters (prefer the BRADLEY_ADMIN_TOKEN environment "
                             "variable: command lines are visible to other users)")
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                        help="server log level (default warning)")
    parser.set_defaults(runner=_run_serve)


def _run_serve(args: argparse.Namespace) -> str:
    try:
        import uvicorn

        from bradley.serve.app import create_app
    except ImportError as exc:
        raise ValueError(f"bradley serve needs the serve extra: pip install 'bradley[serve]' ({exc.name} missing)") \
            from None
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    import os

    from bradley.serve.security import check_admin_token

    given = args.admin_token or os.environ.get("BRADLEY_ADMIN_TOKEN")
    if given:
        check_admin_token(given)  # ValueError naming the limits: exit 2
    try:
        app = create_app(args.db, admin_token=args.admin_token)
    except Exception as exc:  # a bad URL or unreachable database: one line, exit 2
        raise ValueError(f"cannot open the database {_redact(args.db)}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    # access_log off: request lines would carry ?token=... of page URLs into the logs
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return ""


def _redact(url: str) -> str:
    """The URL with any password hidden.

    >>> _redact("postgresql+psycopg://u:secret@h/db")
    'postgresql+psycopg://u:***@h/db'
    """
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    cred, _, host = tail.rpartition("@")
    user = cred.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in cred else url
