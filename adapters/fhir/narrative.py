"""Generated narratives (`text`, status `generated`) for the resources we serve (dom-6).

The narrative is a plain XHTML table of the resource's own elements, in the words a reader
needs: codes by their display or text, references by their display or target, dates as
written. It is made from the rendered resource, so it can never say something the
structured data does not.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fhir.resources.R4B.narrative import Narrative

XHTML = "http://www.w3.org/1999/xhtml"
# Elements that describe the record, not its content; a narrative leaves them out.
_SKIPPED = frozenset({"resourceType", "id", "meta", "text", "contained", "extension",
                      "modifierExtension", "implicitRules", "language"})
_MAX_ITEMS = 12  # per element: a long list (an AuditEvent's entities) is cut, and says so
_MAX_CHARS = 300


def _words(value: Any) -> str:
    """One element value as a reader would say it."""
    if isinstance(value, dict):
        for key in ("display", "text"):
            if isinstance(value.get(key), str):
                return value[key]
        if isinstance(value.get("reference"), str):
            return value["reference"]
        if value.get("coding"):
            return "; ".join(_words(c) for c in value["coding"])
        if "code" in value and "value" not in value:
            return str(value["code"])
        if "value" in value:
            return " ".join(str(v) for v in (value.get("value"), value.get("unit")) if v)
        if "family" in value or "given" in value:
            return " ".join([*value.get("prefix", []), *value.get("given", []),
                             value.get("family", "")]).strip()
        return ", ".join(f"{k}: {_words(v)}" for k, v in value.items() if k not in _SKIPPED)
    if isinstance(value, list):
        words = [_words(v) for v in value[:_MAX_ITEMS]]
        more = len(value) - _MAX_ITEMS
        return "; ".join(words) + (f"; and {more} more" if more > 0 else "")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def narrative(data: dict[str, Any]) -> dict[str, str]:
    """A generated Narrative for the resource `data` (its JSON)."""
    rows = []
    for key, value in data.items():
        if key in _SKIPPED or key.startswith("_"):
            continue
        words = _words(value)
        if len(words) > _MAX_CHARS:
            words = words[:_MAX_CHARS - 1] + "…"
        rows.append(f"<tr><th>{escape(key)}</th><td>{escape(words)}</td></tr>")
    title = escape(f"{data.get('resourceType')} {data.get('id') or ''}".strip())
    table = f"<table>{''.join(rows)}</table>" if rows else ""
    div = f'<div xmlns="{XHTML}"><p><b>{title}</b></p>{table}</div>'

    return {"status": "generated", "div": div}


def with_narrative(resource: Any) -> Any:
    """The fhir.resources model, given its generated `text` (replacing any other)."""
    resource.text = Narrative.model_validate(narrative(json.loads(resource.model_dump_json())))
    return resource
