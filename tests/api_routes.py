"""The `$operation` routes of an app, as tests of the CapabilityStatement read them."""

from __future__ import annotations


def operation_routes(app) -> set[tuple[str, str]]:
    """(resource type or `<resource_type>`, operation name) of every `$` route under /fhir."""
    routes = set()
    for rule in app.url_map.iter_rules():
        segments = rule.rule.split("/")
        if segments[1] == "fhir" and segments[-1].startswith("$"):
            routes.add((segments[2], segments[-1].removeprefix("$")))
    return routes
