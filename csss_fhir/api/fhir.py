"""FHIR REST: capabilities, read, vread, history, search, create and update."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

import orjson
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from flask import Blueprint, Response, current_app, request

from adapters.fhir.binary import from_fhir_binary, to_fhir_staged_binary, upload_content_type
from adapters.fhir.bundle import SearchEntry, searchset_json
from adapters.fhir.capability import Operation, capability_statement, search_parameter_url
from adapters.fhir.medication_request import from_fhir_medication_request
from adapters.fhir.narrative import with_narrative
from adapters.fhir.outcome import operation_outcome
from adapters.fhir.parameters import base64_length
from adapters.fhir.patient import from_fhir_patient
from adapters.fhir.shaping import SUMMARIES, shape
from adapters.fhir.validation import validate_for_create
from csss_fhir import history, registration, resources, search, workflow
from csss_fhir.api.operations import PARAMETERS_OVERHEAD
from csss_fhir.api.responses import (
    JSON_TYPES,
    base_url,
    check_acceptable,
    conditional,
    fhir_response,
    json_body,
    json_response,
    prefer_return,
    raw_fhir_response,
)
from csss_fhir.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ResourceNotFoundError,
    UnsupportedMediaError,
)
from csss_fhir.extensions import services
from csss_fhir.models import Blob, ResourceVersion, db
from csss_fhir.search.query import whole_number
from csss_fhir.search.values import date_range
from csss_fhir.security import access
from csss_fhir.security.authentication import current_actor
from csss_fhir.security.errors import AccessDeniedError
from csss_fhir.subscriptions import topics
from csss_fhir.workflow import staging

if TYPE_CHECKING:
    from csss_fhir.security.actor import Actor

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

CREATABLE = ("Patient", "MedicationRequest")
UPDATABLE = ("MedicationRequest",)


@bp.before_request
def negotiate() -> None:
    if request.path.startswith("/fhir/Binary/"):
        return  # Binary answers with its own content type, or FHIR JSON when asked
    check_acceptable(request)


@bp.get("/metadata")
def metadata() -> Response:
    return fhir_response(with_narrative(capability_statement(
        base_url=base_url(), searchable=search.parameter_types(), creatable=CREATABLE,
        updatable=UPDATABLE,
        software_version=_version(), includes=search.INCLUDES,
        revincludes=search.REVINCLUDES, operations=served_operations(),
        definitions=search_definitions(), modifiers=search.parameter_modifiers(),
        cors=bool(services().settings.cors_origins),
        subscription_topics=topics.canonicals(base_url()))))


def search_definitions() -> dict[str, dict[str, str]]:
    """{type: {parameter: canonical URL}}: R4's SearchParameter, or ours (served by
    api/conformance.py) where R4 defines none that means what ours does."""
    return {resource_type: {name: search.standard_definition(resource_type, name)
                            or search_parameter_url(base_url(), resource_type, name)
                            for name in params}
            for resource_type, params in search.PARAMETERS.items()}


def served_operations() -> list[Operation]:
    """Every `$operation` route under /fhir, read from the URL map so none can be left out.

    A route for any type (`/fhir/<resource_type>/$validate`) serves the types that
    `_OPERATION_TYPES` names; a new one without an entry there fails /fhir/metadata loudly.
    """
    found: list[Operation] = []
    for rule in current_app.url_map.iter_rules():
        segments = rule.rule.split("/")
        if segments[1] != "fhir" or not segments[-1].startswith("$"):
            continue
        resource_type, name = segments[2], segments[-1].removeprefix("$")
        types = _OPERATION_TYPES[name] if resource_type.startswith("<") else (resource_type,)
        instance = len(segments) == 5  # /fhir/<type>/<id>/$name
        found += [Operation(kind, name, instance) for kind in types]
    return found


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("csss-fhir")
    except PackageNotFoundError:
        return "0.0.0+source"


@bp.get("/<resource_type>/<resource_id>")
def read(resource_type: str, resource_id: str) -> Response:
    actor = current_actor()
    if resource_type == "Binary":
        return _binary(actor, resource_id)
    _known_type(resource_type)
    access.require_read(actor, resource_type)
    served = resources.SERVED[resource_type]
    if served.from_row_alone and not _shaping_asked():
        row, body = search.find_with_stored(db.session, resource_type, resource_id,
                                            access.compartment(actor))
        if body is not None:
            return conditional(raw_fhir_response(body, version_id=row.version_id,
                                                 last_modified=row.updated_at))
    else:
        row = search.find(db.session, resource_type, resource_id, access.compartment(actor))
    return conditional(fhir_response(_shaped_read(served.render(row))))


def _shaping_asked() -> bool:
    return "_summary" in request.args or "_elements" in request.args


def _shaped_read(resource: object) -> object:
    """A read cut as `_summary` / `_elements` ask."""
    summary = request.args.get("_summary")
    if summary is not None and summary not in SUMMARIES or summary == "count":
        raise InvalidInputError(f"_summary on a read takes true, text, data or false, "
                                f"not {summary!r}")
    elements = request.args.get("_elements")
    return shape(resource, summary=summary, elements=tuple(
        e.strip() for e in elements.split(",") if e.strip()) if elements else None)


@bp.get("/<resource_type>/<resource_id>/_history/<version_id>")
def vread(resource_type: str, resource_id: str, version_id: str) -> Response:
    actor = current_actor()
    _known_type(resource_type)
    access.require_read(actor, resource_type)
    row = search.find(db.session, resource_type, resource_id, access.compartment(actor))
    if not version_id.isdigit():
        raise ResourceNotFoundError(f"version {version_id!r} does not exist")
    body = history.version(db.session, resource_type, row.id, int(version_id))
    if body is None:
        raise ResourceNotFoundError(
            f"{resource_type}/{resource_id} has no version {version_id}")
    last_updated = json.loads(body)["meta"]["lastUpdated"].replace("Z", "+00:00")
    return conditional(raw_fhir_response(body, version_id=int(version_id),
                                         last_modified=datetime.fromisoformat(last_updated)))


@bp.get("/<resource_type>/<resource_id>/_history")
def instance_history(resource_type: str, resource_id: str) -> Response:
    actor = current_actor()
    _known_type(resource_type)
    access.require_read(actor, resource_type)
    row = search.find(db.session, resource_type, resource_id, access.compartment(actor))
    return history_response(resource_type, row.id,
                            history.versions(db.session, resource_type, row.id))


def history_response(resource_type: str, resource_id: str, versions: list[ResourceVersion]
                     ) -> Response:
    """The history Bundle of a resource's `versions` (newest first), cut by `_since` and
    `_count`."""
    total = len(versions)
    if since := request.args.get("_since"):
        _, start, _ = date_range(since)  # versions recorded at or after the instant
        versions = [v for v in versions if _last_updated(v.body) >= start]
        total = len(versions)
    if count := request.args.get("_count"):
        versions = versions[:whole_number("_count", count, minimum=0, maximum=search.MAX_COUNT)]
    bundle = {
        "resourceType": "Bundle", "type": "history", "total": total,
        "link": [{"relation": "self",  # BASE_URL, never the Host header
                  "url": base_url().removesuffix("/fhir") + request.full_path.rstrip("?")}],
        "entry": [{"fullUrl": f"{base_url()}/{resource_type}/{resource_id}",
                   "resource": json.loads(v.body),
                   "request": {"method": "POST" if v.version_id == 1 else "PUT",
                               "url": f"{resource_type}/{resource_id}"},
                   "response": {"status": "201" if v.version_id == 1 else "200"}}
                  for v in versions],
    }
    return fhir_response(Bundle.model_validate(bundle))


def _last_updated(body: bytes) -> datetime:
    return datetime.fromisoformat(json.loads(body)["meta"]["lastUpdated"].replace("Z", "+00:00"))


@bp.get("/<resource_type>")
def search_get(resource_type: str) -> Response:
    return _search(resource_type, list(request.args.items(multi=True)))


@bp.post("/<resource_type>/_search")
def search_post(resource_type: str) -> Response:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise UnsupportedMediaError("POST _search takes application/x-www-form-urlencoded")
    params = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return _search(resource_type, params)


def _search(resource_type: str, params: list[tuple[str, str]]) -> Response:
    actor = current_actor()
    _known_type(resource_type)
    access.require_read(actor, resource_type)
    strict = "handling=strict" in request.headers.get("Prefer", "").replace(" ", "")
    result = search.search(db.session, search.SearchRequest(
        resource_type=resource_type, params=params, compartment=access.compartment(actor),
        strict=strict, may_read=lambda kind: _may_read(actor, kind)))
    # Rendered as the searched type: a User row is a Practitioner or a PractitionerRole.
    served = resources.SERVED[resource_type]
    stored = result.stored

    def render(row: object, to_fhir: Callable[[object], object]) -> object:
        return shape(to_fhir(row), summary=result.summary, elements=result.elements)

    entries = [SearchEntry(orjson.loads(stored[row.id]) if row.id in stored
                           else render(row, served.render)) for row in result.rows]
    entries += [SearchEntry(render(row, resources.render), mode="include")
                for row in result.included]
    if result.ignored:
        entries.append(SearchEntry(operation_outcome(
            "not-supported", "ignored search parameters: " + ", ".join(result.ignored),
            severity="warning"), mode="outcome"))
    kept = [(k, v) for k, v in params if k not in ("_offset", "_cursor") and
            not any(k == i or f"{k}={v}" == i for i in result.ignored)]
    url = f"{base_url()}/{resource_type}"

    def page(*position: tuple[str, str]) -> str:
        return f"{url}?{urlencode(kept + list(position))}"

    # Pages after the first are found by a keyset cursor (stable while rows are added);
    # an `_offset` a client sent itself still pages by offset.
    links = {"self": page(*[(k, v) for k, v in params if k in ("_offset", "_cursor")])}
    if result.paged_by_cursor:
        if result.next_cursor:
            links["next"] = page(("_cursor", result.next_cursor))
        if result.previous_cursor:
            links["previous"] = page(("_cursor", result.previous_cursor))
        if "_cursor" in dict(params):
            links["first"] = page()
    elif not result.summary_count:
        if result.offset + result.count < result.total and result.count > 0:
            links["next"] = page(("_offset", str(result.offset + result.count)))
        if result.offset > 0:
            links["previous"] = page(("_offset", str(max(0, result.offset - result.count))))
    return json_response(searchset_json(entries=entries,
                                        total=result.total if result.with_total else None,
                                        base_url=base_url(), links=links))


VALIDATORS = {"Patient": from_fhir_patient, "MedicationRequest": from_fhir_medication_request}
# The types each `/fhir/<resource_type>/$operation` route serves (see _operations).
_OPERATION_TYPES = {"validate": tuple(VALIDATORS)}


@bp.post("/<resource_type>/$validate")
def validate(resource_type: str) -> Response:
    """`$validate` (mode create): 200 with an OperationOutcome saying valid or why not."""
    current_actor()
    _known_type(resource_type)
    if resource_type not in VALIDATORS:
        raise InvalidInputError(f"$validate is supported for {', '.join(VALIDATORS)}, "
                                f"not {resource_type}")
    return fhir_response(validate_for_create(json_body(request), resource_type,
                                             VALIDATORS[resource_type]))


@bp.post("/Binary")
def create_binary() -> Response:
    """Stage a file for `$upload` (`file` = `Binary/<id>`): raw bytes with their
    Content-Type, or a FHIR Binary with base64 `data`. 201 with the Binary, less its bytes."""
    actor = current_actor()
    staging.require_stager(actor)  # 403 before reading a body of megabytes
    limit = services().settings.max_upload_bytes
    if request.mimetype in JSON_TYPES:
        request.max_content_length = base64_length(limit) + PARAMETERS_OVERHEAD
        data, content_type = from_fhir_binary(json_body(request), max_bytes=limit)
    else:
        content_type = upload_content_type(request.mimetype)
        data = request.stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLargeError(f"the file is larger than "
                                       f"{services().settings.max_upload_mb} MB")
        if not data:
            raise InvalidInputError("the body is empty; send the file's bytes")
    staged = staging.stage_binary(db.session, actor, data, content_type)
    response = fhir_response(to_fhir_staged_binary(staged.id, staged.content_type,
                                                   staged.created_at), 201)
    response.headers["Location"] = f"{base_url()}/Binary/{staged.id}"
    return response


def _not_supported(interaction: str, resource_type: str, served: tuple[str, ...]) -> Response:
    """405 for an interaction the server serves for other types only (Allow: GET)."""
    return Response(
        operation_outcome("not-supported",
                          f"{interaction} is not supported for {resource_type}; "
                          f"only {', '.join(served)}").model_dump_json(),
        status=405, content_type="application/fhir+json; charset=utf-8",
        headers={"Allow": "GET"})


@bp.post("/<resource_type>")
def create(resource_type: str) -> Response:
    actor = current_actor()
    _known_type(resource_type)
    if resource_type not in CREATABLE:
        return _not_supported("create", resource_type, CREATABLE)
    body = json_body(request)
    if condition := request.headers.get("If-None-Exist"):
        existing = _conditional_match(actor, resource_type, condition)
        if existing is not None:
            return _created_response(resources.render(existing), 200)
    if resource_type == "Patient":
        patient = registration.create_patient(db.session, actor, from_fhir_patient(body))
        return _created_response(resources.render(patient), 201)
    prescription = workflow.prescribe(db.session, actor, from_fhir_medication_request(body))
    return _created_response(resources.render(prescription), 201)


def _conditional_match(actor: Actor, resource_type: str, condition: str) -> object | None:
    """Conditional create (`If-None-Exist: identifier=...`): the one resource the search
    finds, or None when none does.

    Raises:
        PreconditionFailedError: the search finds several (412).
        InvalidInputError: the condition is no search a strict search would run.
    """
    access.require_read(actor, resource_type)
    params = parse_qsl(condition.removeprefix("?"), keep_blank_values=True)
    if not params:
        raise InvalidInputError(f"If-None-Exist holds no search parameters ({condition!r}); "
                                "send them as a query string, e.g. identifier=system|value")
    result = search.search(db.session, search.SearchRequest(
        resource_type=resource_type, params=[*params, ("_count", "2")],
        compartment=access.compartment(actor), strict=True))
    if result.total > 1:
        raise PreconditionFailedError(
            f"If-None-Exist: {condition} matches {result.total} {resource_type} resources; "
            "make the condition select one, or leave it out to create another")
    return result.rows[0] if result.rows else None


def _created_response(resource: object, status: int) -> Response:
    """A create's answer, as `Prefer: return=` asks: the resource, nothing, or an outcome."""
    response = fhir_response(resource, status, location=True)
    preference = prefer_return()
    if preference == "minimal":
        response.set_data(b"")
        del response.headers["Content-Type"]
    elif preference == "OperationOutcome":
        verb = "created" if status == 201 else "already exists (If-None-Exist)"
        response.set_data(operation_outcome(
            "informational", f"{resource.get_resource_type()}/{resource.id} {verb}",
            severity="information").model_dump_json())
    return response


@bp.put("/<resource_type>/<resource_id>")
def update(resource_type: str, resource_id: str) -> Response:
    """FHIR update: a corrected or cancelled MedicationRequest, as its next version."""
    actor = current_actor()
    _known_type(resource_type)
    if resource_type not in UPDATABLE:
        return _not_supported("update", resource_type, UPDATABLE)
    body = json_body(request)
    if isinstance(body, dict) and body.get("id") != resource_id:
        raise InvalidInputError(
            f"the resource's id is {body.get('id')!r}; an update of {resource_type}/"
            f"{resource_id} must carry id {resource_id!r}")
    prescription = workflow.update_prescription(
        db.session, actor, resource_id, from_fhir_medication_request(body),
        if_match=request.headers.get("If-Match"))
    return fhir_response(resources.render(prescription), 200)


def _binary(actor: Actor, binary_id: str) -> Response:
    """A stored file: raw bytes, or a FHIR Binary resource when the client asks for FHIR.

    A file its caller staged (POST Binary) and has not yet used in an $upload is read at
    the Location the POST named, by that caller only."""
    access.require_read(actor, "Binary")
    blob = db.session.get(Blob, binary_id)
    if blob is not None and registration.may_read_binary(db.session, actor, blob):
        data, content_type, created = (services().store.get(blob.sha256), blob.content_type,
                                       blob.created_at)
    elif blob is None:
        staged = staging.staged_file(db.session, actor, binary_id)  # 404 unless the caller's
        data, content_type, created = staged.data, staged.content_type, staged.created_at
    else:
        raise ResourceNotFoundError(f"Binary/{binary_id} does not exist")
    accept = request.accept_mimetypes
    if accept.best_match(["application/fhir+json", content_type]) == \
            "application/fhir+json" and "fhir" in request.headers.get("Accept", ""):
        resource = Binary.model_validate({
            "resourceType": "Binary", "id": binary_id,
            "meta": {"versionId": "1", "lastUpdated": created.isoformat()},
            "contentType": content_type, "data": base64.b64encode(data).decode("ascii"),
        })
        return fhir_response(resource)
    response = Response(data, content_type=content_type)
    response.headers["ETag"] = 'W/"1"'
    response.headers["Content-Disposition"] = f'inline; filename="{binary_id}.pdf"' \
        if content_type == "application/pdf" else "inline"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _may_read(actor: Actor, resource_type: str) -> bool:
    """Whether _include/_revinclude may add rows of this type for this caller."""
    try:
        access.require_read(actor, resource_type)
    except AccessDeniedError:
        return False
    return True


def _known_type(resource_type: str) -> None:
    if resource_type not in resources.SERVED:
        raise ResourceNotFoundError(f"{resource_type} is not a resource type served here")
