"""Keep query strings out of access logs: a search like `Patient?name=...` names a patient.

Werkzeug's development server and gunicorn's access log both write the request line; this
filter cuts everything after `?` (the path, with its opaque ids, stays).
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
_QUERY = re.compile(r"\?[^\s\"]*")


class QueryStringFilter(logging.Filter):
    """Redact query strings in access-log records (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):  # gunicorn's atoms
            args = dict(record.args)
            for key in ("r", "U"):
                if isinstance(args.get(key), str):
                    args[key] = _QUERY.sub("?…", args[key])
            if "q" in args:
                args["q"] = "…" if args["q"] else ""
            record.args = args
        elif isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub("?…", a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = _QUERY.sub("?…", record.msg)
        return True


def install() -> None:
    """Add the filter to the access loggers once (idempotent across app instances)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryStringFilter) for f in logger.filters):
            logger.addFilter(QueryStringFilter())
