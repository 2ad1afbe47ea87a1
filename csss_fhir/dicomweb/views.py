"""The /dicomweb blueprint: STOW-RS, QIDO-RS and WADO-RS (PS3.18).

Each route parses the request, calls `workflow.receive` or `queries`, and renders DICOM JSON
or multipart/related. Bearer tokens and SMART scopes are those of /fhir: STOW-RS is the
upload step (`system/ImagingStudy.write`), everything else reads ImagingStudy
(`system/ImagingStudy.read` or `system/*.read`); patients see only their own studies.
QIDO-RS and WADO-RS also serve the AI results filed in a study on release (the SR and the
Grad-CAM Secondary Capture, `csss_fhir.dicom_results`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request
from pydicom.dataset import Dataset
from werkzeug.http import parse_options_header

from adapters import dicom
from csss_fhir.dicomweb import attributes, auditing, queries
from csss_fhir.dicomweb.multipart import DICOM, build_related, parse_related
from csss_fhir.errors import CsssError, InvalidInputError, NotAcceptableError
from csss_fhir.extensions import services
from csss_fhir.models import DicomResult, Scan, db
from csss_fhir.security.authentication import current_actor
from csss_fhir.workflow import receive

log = logging.getLogger(__name__)

bp = Blueprint("dicomweb", __name__, url_prefix="/dicomweb")
bp.after_request(auditing.record_request)

DICOM_JSON = "application/dicom+json"
_JSON_TYPES = (DICOM_JSON, "application/json")
_STUDY = "/studies/<study>"
_SERIES = _STUDY + "/series/<series>"
_INSTANCE = _SERIES + "/instances/<instance>"


def root_url() -> str:
    """The WADO-RS base under BASE_URL's root (settings.public_root), never the Host header."""
    return f"{services().settings.public_root.removesuffix('/fhir')}/dicomweb"


def _dicom_json(body: Any, status: int = 200, warnings: list[str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, content_type=DICOM_JSON)
    for text in warnings or []:
        # PS3.18 8.4.4: a Warning header says why; no patient data is in these texts.
        response.headers.add("Warning", f'299 csss-fhir "{_header_text(text)}"')
    return response


def _header_text(text: str) -> str:
    return text.replace('"', "'").replace("\r", " ").replace("\n", " ")[:500]


def _require_json() -> None:
    accept = request.accept_mimetypes
    if accept.provided and not any(accept[t] for t in _JSON_TYPES):
        raise NotAcceptableError(f"this resource is available as {DICOM_JSON} only")


# --- STOW-RS ------------------------------------------------------------------------------

@bp.post("/studies")
@bp.post(_STUDY)
def store(study: str | None = None) -> Response:
    actor = current_actor()
    receive.require_sender(actor)
    _require_json()
    request.max_content_length = services().settings.dicomweb_max_request_bytes
    parts = parse_related(request.get_data(), request.headers.get("Content-Type"))
    if not parts:
        raise InvalidInputError("the multipart body has no parts; send at least one instance")
    root = root_url()
    stored: list[receive.ReceivedInstance] = []
    failed: list[Dataset] = []
    reasons: list[str] = []
    for number, part in enumerate(parts, start=1):
        try:
            if part.content_type != DICOM:
                raise InvalidInputError(
                    f"part {number} is {part.content_type}, not {DICOM}")
            received = receive.receive_instance(db.session, services(), actor, part.data,
                                                study_uid=study)
        except CsssError as error:
            failed.append(_failed_item(part.data, error))
            reasons.append(f"part {number}: {error}")
            continue
        auditing.touched([received.scan])
        stored.append(received)
    body = Dataset()
    if study is not None or stored:
        body.RetrieveURL = f"{root}/studies/{study or stored[0].scan.study_uid}"
    if stored:
        body.ReferencedSOPSequence = [_stored_item(r, root) for r in stored]
    if failed:
        body.FailedSOPSequence = failed
    status = 200 if not failed else 202 if stored else 409
    log.info("stow-rs request", extra={"stored": len(stored), "failed": len(failed)})
    return _dicom_json(dicom.to_dicom_json(body), status, reasons)


def _stored_item(received: receive.ReceivedInstance, root: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = received.sop_class_uid
    item.ReferencedSOPInstanceUID = received.sop_instance_uid
    item.RetrieveURL = attributes.retrieve_url(root, received.scan, "instance")
    return item


def _failed_item(data: bytes, error: CsssError) -> Dataset:
    item = Dataset()
    try:
        header = dicom.describe(data, max_pixels=services().settings.max_image_pixels)
        item.ReferencedSOPClassUID = header.sop_class_uid
        item.ReferencedSOPInstanceUID = header.instance_uid
    except CsssError:
        pass  # not even a readable header: the item carries only the reason
    item.FailureReason = dicom.failure_reason(error)
    return item


# --- QIDO-RS ------------------------------------------------------------------------------

def _search(level: str, study_uid: str | None = None, series_uid: str | None = None
            ) -> Response:
    actor = current_actor()
    _require_json()
    query = queries.parse_query(list(request.args.items(multi=True)), level=level)
    include = attributes.include_tags(query.include)
    scans, total = queries.search(db.session, actor, query, level=level, study_uid=study_uid,
                                  series_uid=series_uid)
    auditing.touched(scans, query=True)
    root = root_url()
    derived = queries.derived_in(db.session, scans) if level == "study" else {}
    body = [attributes.to_json(scan, level, root=root, include=include, header_of=_header,
                               derived=derived.get(scan.id, [])) for scan in scans]
    warnings = []
    if query.offset + len(scans) < total:
        warnings.append(f"{total} results match; this page has {len(scans)} from offset "
                        f"{query.offset}: ask again with offset={query.offset + len(scans)}")
    if not body:
        return Response(status=204)
    return _dicom_json(body, 200, warnings)


def _header(scan: Scan | DicomResult) -> Dataset:
    if isinstance(scan, Scan) and scan.source_format != "dicom":
        return Dataset()  # a JPEG/PNG upload's study, listed for its filed results
    return dicom.read_dataset(services().store.get(scan.image.sha256))


@bp.get("/studies")
def search_studies() -> Response:
    return _search("study")


@bp.get(_STUDY + "/series")
def search_series(study: str) -> Response:
    return _search("series", study_uid=study)


@bp.get(_STUDY + "/instances")
def search_study_instances(study: str) -> Response:
    return _search("instance", study_uid=study)


@bp.get(_SERIES + "/instances")
def search_instances(study: str, series: str) -> Response:
    return _search("instance", study_uid=study, series_uid=series)


# --- WADO-RS ------------------------------------------------------------------------------

def _found(study: str, series: str | None = None, instance: str | None = None
           ) -> list[Scan | DicomResult]:
    scans = queries.find(db.session, current_actor(), study, series, instance)
    auditing.touched(scans)
    return scans


def _requested_syntax() -> str | None:
    """The transfer syntax an Accept header asks for (None: the default, Explicit VR LE).

    Raises:
        NotAcceptableError: nothing acceptable is multipart/related of application/dicom.
    """
    header = request.headers.get("Accept", "").strip()
    if not header:
        return None
    for item in header.split(","):
        mimetype, options = parse_options_header(item)
        if mimetype in ("*/*", "multipart/*") or (
                mimetype == "multipart/related" and options.get("type", DICOM) == DICOM):
            return options.get("transfer-syntax")
        if mimetype == DICOM:  # some clients name the part type bare
            return options.get("transfer-syntax")
    raise NotAcceptableError(
        f'instances are available as multipart/related; type="{DICOM}" only; for metadata '
        "add /metadata, for an image add /rendered")


def _instances(scans: list[Scan | DicomResult]) -> Response:
    syntax = _requested_syntax()
    store = services().store
    items = [dicom.in_transfer_syntax(store.get(scan.image.sha256), syntax) for scan in scans]
    body, content_type = build_related(items, transfer_syntax=syntax)
    return Response(body, content_type=content_type,
                     headers={"Cache-Control": "private, no-store"})


def _metadata(scans: list[Scan | DicomResult]) -> Response:
    _require_json()
    store = services().store
    return _dicom_json([dicom.to_dicom_json(dicom.read_dataset(store.get(s.image.sha256)))
                        for s in scans])


def _retrieve(kind: Callable[[list[Scan | DicomResult]], Response], *uids: str
              ) -> Response:
    return kind(_found(*uids))


@bp.get(_STUDY)
def retrieve_study(study: str) -> Response:
    return _retrieve(_instances, study)


@bp.get(_SERIES)
def retrieve_series(study: str, series: str) -> Response:
    return _retrieve(_instances, study, series)


@bp.get(_INSTANCE)
def retrieve_instance(study: str, series: str, instance: str) -> Response:
    return _retrieve(_instances, study, series, instance)


@bp.get(_STUDY + "/metadata")
def study_metadata(study: str) -> Response:
    return _retrieve(_metadata, study)


@bp.get(_SERIES + "/metadata")
def series_metadata(study: str, series: str) -> Response:
    return _retrieve(_metadata, study, series)


@bp.get(_INSTANCE + "/metadata")
def instance_metadata(study: str, series: str, instance: str) -> Response:
    return _retrieve(_metadata, study, series, instance)


@bp.get(_INSTANCE + "/rendered")
def rendered_instance(study: str, series: str, instance: str) -> Response:
    media_type = request.accept_mimetypes.best_match(list(dicom.RENDERED_TYPES)) \
        if request.accept_mimetypes.provided else "image/jpeg"
    if media_type is None:
        raise NotAcceptableError("rendered instances are available as image/jpeg or image/png")
    scan = _found(study, series, instance)[0]
    data = services().store.get(scan.image.sha256)
    image = dicom.render(data, media_type, max_pixels=services().settings.max_image_pixels)
    return Response(image, content_type=media_type,
                    headers={"Cache-Control": "private, no-store"})
