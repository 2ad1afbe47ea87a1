"""Search results -> FHIR Bundle of type searchset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle

from adapters.fhir.common import instant


@dataclass(frozen=True)
class SearchEntry:
    resource: Any  # a fhir.resources model, or its JSON as a dict
    mode: str = "match"  # match | include | outcome


def searchset(*, entries: list[SearchEntry], total: int | None, base_url: str,
              links: dict[str, str]) -> Bundle:
    """A searchset Bundle; `links` maps relation (self, next, previous) to URL; `total`
    None leaves the total out (`_total=none`)."""
    return Bundle.model_validate(_searchset(entries, total, base_url, links))


def searchset_json(*, entries: list[SearchEntry], total: int | None, base_url: str,
                   links: dict[str, str]) -> dict[str, Any]:
    """The same Bundle as JSON data, to serialise as it is, without building the model.

    An entry's resource may be JSON already (a version stored when its row was written,
    validated then): a 20-entry search spent most of its time validating and dumping models
    of resources that were already valid JSON. Models are dumped here.
    """
    data = _searchset(entries, total, base_url, links)
    for item in data.get("entry") or ():
        if not isinstance(item["resource"], dict):
            item["resource"] = orjson.loads(item["resource"].model_dump_json())
    return data


def _searchset(entries: list[SearchEntry], total: int | None, base_url: str,
               links: dict[str, str]) -> dict[str, Any]:
    """The Bundle's elements in the order FHIR (and the model's JSON) gives them."""
    base = base_url.rstrip("/")
    bundle_entries = []
    for entry in entries:
        resource = entry.resource
        kind, resource_id = (
            (resource.get("resourceType"), resource.get("id")) if isinstance(resource, dict)
            else (resource.get_resource_type(), resource.id))
        full_url = f"{base}/{kind}/{resource_id}" if resource_id else f"urn:uuid:{uuid.uuid4()}"
        bundle_entries.append({"fullUrl": full_url, "resource": resource,
                               "search": {"mode": entry.mode}})
    data: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(datetime.now(UTC))},
        "type": "searchset",
    }
    if total is not None:
        data["total"] = total
    data["link"] = [{"relation": rel, "url": url} for rel, url in links.items()]
    if bundle_entries:
        data["entry"] = bundle_entries
    return data
