"""subscriptions: topic-based FHIR Subscriptions (R4 Subscriptions Backport IG).

`topics` names what may be subscribed to; `service` creates subscriptions (system clients
with `system/Subscription.write`, only to topics whose resources their scopes can read)
and records events in the transaction that causes them (`record`, called by the workflow);
each change of a subscription's status is a version (`change_status`; `version`,
`versions` for vread and `_history`);
`delivery` sends the handshake, the numbered notifications — one at a time, in order, the
next only after the endpoint acknowledged the previous — and heartbeats, from a job
(`csss_fhir.jobs.NOTIFY_SUBSCRIBER`) with back-off, found again by the sweep, auditing
each; `endpoints` decides which URLs the server may post to (at create and before every
send) and posts to the address it checked.
"""

from __future__ import annotations

from csss_fhir.subscriptions.service import (
    create,
    find,
    record,
    require_subscriber,
    version,
    versions,
)
from csss_fhir.subscriptions.topics import REPORT_RELEASED, SCAN_NEEDS_REVIEW, TOPICS

__all__ = ["REPORT_RELEASED", "SCAN_NEEDS_REVIEW", "TOPICS", "create", "find", "record",
           "require_subscriber", "version", "versions"]
