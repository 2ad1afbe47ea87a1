"""Search results -> FHIR Bundle of type searchset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from adapters.fhir.common import instant


@dataclass(frozen=True)
class SearchEntry:
    resource: Any  # a fhir.resources model
    mode: str = "match"  # match | include | outcome


def searchset(*, entries: list[SearchEntry], total: int | None, base_url: str,
              links: dict[str, str]) -> Bundle:
    """A searchset Bundle; `links` maps relation (self, next, previous) to URL; `total`
    None leaves the total out (`_total=none`)."""
    base = base_url.rstrip("/")
    bundle_entries = []
    for entry in entries:
        resource = entry.resource
        item: dict[str, Any] = {"resource": resource, "search": {"mode": entry.mode}}
        if resource.id:
            item["fullUrl"] = f"{base}/{resource.get_resource_type()}/{resource.id}"
        else:
            item["fullUrl"] = f"urn:uuid:{uuid.uuid4()}"
        bundle_entries.append(item)
    return Bundle.model_validate({
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(datetime.now(UTC))},
        "type": "searchset",
        "total": total,
        "link": [{"relation": rel, "url": url} for rel, url in links.items()],
        "entry": bundle_entries or None,
    })
