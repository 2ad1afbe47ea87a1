"""A conformance run in the manner of Inferno or Touchstone, driven by the server's own
CapabilityStatement (issue 16): whatever /fhir/metadata declares is exercised, so a new
type, search parameter, include or operation is tested the day it is declared.

For each declared type: search-type, read, vread, history-instance (and -type), create,
update and delete where declared; every declared search parameter with a value read from a
resource the server returned (it must find that resource again: the round trip), with
`:missing=true` and `false` (disjoint, and together every resource), and with a value that
must find nothing; `_sort` on each parameter; every declared `_include`/`_revinclude`;
`_summary`, `_elements`, `_count` paging; and every declared operation's
OperationDefinition at its canonical URL.

Every response is checked as an integrator's client would: no 5xx; Bundles carry a correct
`total`, `link` and `entry.fullUrl`/`search.mode`; every resource parses with the R4B models
and (where ../shared/fhir is present) HL7's R4 JSON Schema; every reference to this server
resolves; `meta.versionId`/`lastUpdated` agree with ETag/Last-Modified.

The value a parameter must match is read with R4's definition of the parameter (`R4_PATHS`,
from the SearchParameter resources of FHIR 4.0.1), not with the server's code, so the
server's reading of a parameter is checked against the standard's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from fhirpy import SyncFHIRClient

from csss_fhir.models import db
from csss_fhir.security import clients
from tests import factories
from tests.servers import serve_app
from tests.unit.subscriptions.conftest import Receiver

pytestmark = pytest.mark.slow

# R4 SearchParameter id -> the elements it searches, as a small path language: dotted
# element names; `[Type]` keeps references to that type; `[element=value]` keeps the items
# where that element has that value; `|` joins alternatives. From FHIR 4.0.1's
# search-parameters.json (the `expression` of each).
R4_PATHS: dict[str, str] = {
    "Resource-id": "id",
    "Resource-lastUpdated": "meta.lastUpdated",
    "Patient-identifier": "identifier",
    "Patient-name": "name",
    "individual-family": "name.family",
    "individual-given": "name.given",
    "individual-birthdate": "birthDate",
    "individual-email": "telecom[system=email]",
    "Patient-active": "active",
    "Practitioner-name": "name",
    "PractitionerRole-role": "code",
    "ImagingStudy-status": "status",
    "clinical-identifier": "identifier",
    "ImagingStudy-started": "started",
    "ImagingStudy-modality": "series.modality",
    "ImagingStudy-subject": "subject",
    "Task-status": "status",
    "Task-focus": "focus",
    "Task-business-status": "businessStatus",
    "Task-patient": "for[Patient]",
    "Task-subject": "for",
    "Observation-status": "status",
    "Observation-category": "category",
    "clinical-code": "code",
    "Observation-value-concept": "valueCodeableConcept",
    "Observation-derived-from": "derivedFrom",
    "Observation-subject": "subject",
    "clinical-patient": "subject[Patient]",
    "medications-status": "status",
    "MedicationRequest-authoredon": "authoredOn",
    "MedicationRequest-subject": "subject",
    "DiagnosticReport-status": "status",
    "DiagnosticReport-issued": "issued",
    "DiagnosticReport-subject": "subject",
    "Provenance-patient": "target[Patient]",
    "Provenance-target": "target",
    "AuditEvent-patient": "agent.who[Patient]|entity.what[Patient]",
    "AuditEvent-agent": "agent.who",
    "AuditEvent-date": "recorded",
    "conformance-url": "url",
    "conformance-name": "name",
}
R4 = "http://hl7.org/fhir/SearchParameter/"
# The paths of the server's own parameters (their SearchParameter's FHIRPath, whose
# `resolve()` this little language cannot follow, is checked by hand here).
OWN_PATHS: dict[tuple[str, str], str] = {
    ("Patient", "patient"): "@self",
    ("Patient", "subject"): "@self",
    ("AuditEvent", "subject"): "entity.what[Patient]",
}
# Parameters whose value this run cannot read off the resource alone (it needs another
# resource): checked by a value taken from the resource they lead to.
VIA_STUDY = {("Provenance", "scan-patient"), ("Provenance", "subject")}
NOTHING = {"token": "http://example.org/none|no-such-code", "string": "Zzyzxqv",
           "date": "1901-01-01", "reference": "Patient/no-such-patient",
           "uri": "http://example.org/no-such-url", "number": "0"}
# Types whose set of rows grows while the run reads (every read is audited).
GROWING = {"AuditEvent"}


def elements(data: Any, path: str) -> list[Any]:
    """The values at `path` (see R4_PATHS) in a resource's JSON."""
    found: list[Any] = []
    for alternative in path.split("|"):
        values = [data]
        for step in alternative.split("."):
            name, _, condition = step.partition("[")
            values = [item for value in values if isinstance(value, dict)
                      for item in _as_list(value.get(name))]
            if condition:
                values = [v for v in values if _meets(v, condition.rstrip("]"))]
        found += values
    return found


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _meets(value: Any, condition: str) -> bool:
    if "=" in condition:
        key, wanted = condition.split("=")
        return isinstance(value, dict) and value.get(key) == wanted
    return isinstance(value, dict) and str(value.get("reference", "")).startswith(
        f"{condition}/")


def search_values(kind: str, value: Any) -> list[str]:
    """Search values that must match an element holding `value`, by parameter type."""
    if kind == "token":
        if isinstance(value, bool):
            return [str(value).lower()]
        if isinstance(value, str):
            return [value]
        codings = value.get("coding") if "coding" in value else [value]
        found = []
        for coding in codings:
            code = coding.get("code") or coding.get("value")
            if code is not None:
                found.append(code)
                if coding.get("system") and "code" in coding or "value" in coding and \
                        coding.get("system") and "use" not in coding:
                    found.append(f"{coding['system']}|{code}")
        return found
    if kind == "string":
        if isinstance(value, str):
            return [value]
        parts = [value.get("family"), *(value.get("given") or []), value.get("text")]
        return [p for p in parts if p]
    if kind == "date":
        return [value, f"eq{value}", f"ge{value}", f"le{value}"]
    if kind == "reference":
        return [value["reference"]] if value.get("reference") else []
    if kind == "uri":
        return [value]
    return []


class Run:
    """One conformance run against a live server; `problems` collects what it finds."""

    def __init__(self, live: Any, headers: dict[str, str], hook: str) -> None:
        self.live = live
        self.hook = hook  # a rest-hook endpoint a Subscription may name
        self.base = live.fhir("").rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({**headers, "Accept": "application/fhir+json"})
        self.problems: list[str] = []
        self.resolved: dict[str, bool] = {}

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")

    # --- HTTP, with the checks every response gets ------------------------------------

    def get(self, path: str, params: Any = None, *, expect: int | None = 200
            ) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base}/{path}"
        response = self.http.get(url, params=params, timeout=60)
        where = f"GET {urlsplit(response.url).path}?{urlsplit(response.url).query}"
        self._check_response(where, response, expect)
        return response

    def send(self, method: str, path: str, body: Any, *, expect: int,
             headers: dict[str, str] | None = None) -> requests.Response:
        response = self.http.request(method, f"{self.base}/{path}", json=body,
                                     headers=headers, timeout=60)
        self._check_response(f"{method} {path}", response, expect)
        return response

    def _check_response(self, where: str, response: requests.Response,
                        expect: int | None) -> None:
        if response.status_code >= 500:
            self.problem(where, f"{response.status_code} {response.text[:300]}")
            return
        if expect is not None and response.status_code != expect:
            self.problem(where, f"status {response.status_code}, expected {expect}: "
                                f"{response.text[:300]}")
        if not response.content:
            return
        if not response.headers.get("Content-Type", "").startswith("application/fhir+json"):
            self.problem(where, f"Content-Type {response.headers.get('Content-Type')}")
            return
        data = response.json()
        self.check_resource(where, data)
        if data["resourceType"] == "Bundle":
            self.check_bundle(where, data)

    def check_resource(self, where: str, data: dict[str, Any]) -> None:
        """R4B models and HL7's schema; every reference to this server resolves."""
        try:
            factories.parse_fhir(data)
        except Exception as err:  # any parse failure is the finding
            self.problem(where, f"{data.get('resourceType')}/{data.get('id')} does not "
                                f"validate: {str(err)[:400]}")
        if data["resourceType"] in ("Bundle", "OperationOutcome", "CapabilityStatement"):
            return
        meta = data.get("meta") or {}
        if data.get("id") and not (meta.get("versionId") and meta.get("lastUpdated")):
            self.problem(where, f"{data['resourceType']}/{data['id']} lacks meta.versionId "
                                "or meta.lastUpdated")
        for reference in _references(data):
            self.resolve(where, reference)

    def resolve(self, where: str, reference: str) -> None:
        if reference.startswith(("#", "urn:")) or reference.startswith("http") and \
                not reference.startswith(self.base):
            return
        relative = reference.removeprefix(f"{self.base}/")
        if relative not in self.resolved:
            response = self.http.get(f"{self.base}/{relative}", timeout=60)
            self.resolved[relative] = response.status_code == 200
        if not self.resolved[relative]:
            self.problem(where, f"reference {reference} does not resolve")

    def check_bundle(self, where: str, bundle: dict[str, Any]) -> None:
        links = {link["relation"]: link["url"] for link in bundle.get("link") or []}
        entries = bundle.get("entry") or []
        if bundle["type"] == "searchset":
            if "self" not in links:
                self.problem(where, "searchset Bundle without a self link")
            matches = [e for e in entries if e.get("search", {}).get("mode") == "match"]
            if any(e.get("search", {}).get("mode") not in ("match", "include", "outcome")
                   for e in entries):
                self.problem(where, "an entry without search.mode match|include|outcome")
            paged = "next" in links or "previous" in links or any(
                p in links.get("self", "") for p in ("_cursor", "_offset", "_summary=count"))
            if "total" in bundle and not paged and bundle["total"] != len(matches):
                self.problem(where, f"total {bundle['total']} but {len(matches)} matches "
                                    "on the only page")
            if "total" in bundle and len(matches) > bundle["total"]:
                self.problem(where, f"{len(matches)} matches exceed total {bundle['total']}")
        for entry in entries:
            resource = entry.get("resource") or {}
            expected = f"{self.base}/{resource.get('resourceType')}/{resource.get('id')}"
            if resource.get("id") and entry.get("fullUrl") != expected:
                self.problem(where, f"fullUrl {entry.get('fullUrl')}, expected {expected}")

    # --- searching ---------------------------------------------------------------------

    def search(self, resource_type: str, params: list[tuple[str, str]], *,
               expect: int = 200) -> dict[str, Any] | None:
        response = self.get(resource_type, params, expect=expect)
        return response.json() if response.status_code == 200 else None

    def all_matches(self, resource_type: str, params: list[tuple[str, str]], *,
                    count: int = 100) -> list[dict[str, Any]]:
        """Every match, following next links; checks the walk against `total`."""
        bundle = self.search(resource_type, [*params, ("_count", str(count))])
        if bundle is None:
            return []
        total, found = bundle.get("total"), []
        while True:
            found += [e["resource"] for e in bundle.get("entry") or []
                      if e["search"]["mode"] == "match"]
            following = next((link["url"] for link in bundle.get("link") or []
                              if link["relation"] == "next"), None)
            if following is None:
                break
            bundle = self.get(following).json()
        where = f"{resource_type}?{params}"
        ids = [r["id"] for r in found]
        if len(ids) != len(set(ids)):
            self.problem(where, "paging returned an entry twice")
        if resource_type not in GROWING and total is not None and total != len(ids):
            self.problem(where, f"total {total}, but the pages held {len(ids)}")
        return found


def _references(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "reference" and isinstance(value, str):
                yield value
            elif key != "contained":
                yield from _references(value)
    elif isinstance(data, list):
        for item in data:
            yield from _references(item)


def _http_date_agrees(last_modified: str | None, last_updated: str) -> bool:
    if last_modified is None:
        return False
    stated = datetime.fromisoformat(last_updated.replace("Z", "+00:00"))
    return parsedate_to_datetime(last_modified) == stated.replace(microsecond=0)


# --- the seeded server --------------------------------------------------------------------

@pytest.fixture
def seeded(tmp_path, new_database):
    """A server holding every kind of resource: released, verified and AI-analysed scans,
    a prescription, a Patient created through FHIR, and patient sign-ins (audited)."""
    from tests.unit.api.test_fidelity import FULL_PATIENT

    settings = factories.settings_for(tmp_path / "instance", new_database(),
                                      confidence_threshold=0.0)
    receiver = Receiver()  # the EHR's rest-hook, on loopback (allowed in the tests)
    with serve_app(settings) as live:
        with live.app.app_context():
            factories.make_scan("REPORT_READY")
            factories.make_scan("AI_ANALYZED")
            verified, patient = factories.make_scan("DOCTOR_VERIFIED")
            patient_id = patient.patient_id
        # A patient signing in: a patient agent in the audit trail (AuditEvent?patient).
        factories.login(live, factories.make_login(live.app, "patient"))
        pharmacist = factories.login(live, factories.make_login(live.app, "pharmacist"))
        body = factories.medication_request(patient_id, verified)
        created = requests.post(live.fhir("MedicationRequest"), json=body,
                                headers=pharmacist, timeout=30)
        assert created.status_code == 201, created.text
        doctor = factories.login(live, factories.make_login(live.app, "doctor"))
        created = requests.post(live.fhir("Patient"), json=FULL_PATIENT, headers=doctor,
                                timeout=30)
        assert created.status_code == 201, created.text
        admin = factories.login(live, factories.make_login(live.app, "admin"))
        with live.app.app_context():
            ehr = clients.create_client(db.session, "Conformance EHR",
                                        "system/*.read system/Subscription.write")
        token = requests.post(live("/auth/token"), timeout=30, data={
            "grant_type": "client_credentials", "client_id": ehr.client_id,
            "client_secret": ehr.client_secret})
        assert token.status_code == 200, token.text
        system = {"Authorization": f"Bearer {token.json()['access_token']}"}
        yield live, admin, {"pharmacist": pharmacist, "doctor": doctor, "admin": admin,
                            "system": system}, receiver.url
    receiver.server.shutdown()
    receiver.server.server_close()


# What a create sends, per declared type: (the writer, the body, its content type). A type
# declared creatable without an entry here fails the run: add one.
def _create_request(resource_type: str, samples: dict[str, list[dict]], entry: dict,
                    hook: str) -> tuple[str, Any, str] | None:
    if resource_type == "Patient":
        return "doctor", {"resourceType": "Patient", "gender": "unknown",
                          "name": [{"family": "Conformance", "given": ["Run"]}],
                          "birthDate": "1970-01-01"}, "application/fhir+json"
    if resource_type == "MedicationRequest":
        study = next(s for s in samples["ImagingStudy"]
                     if any(t["focus"]["reference"] == f"ImagingStudy/{s['id']}" and
                            t["businessStatus"]["text"] == "DOCTOR_VERIFIED"
                            for t in samples["Task"]))
        return "pharmacist", factories.medication_request(
            study["subject"]["reference"].split("/")[1], study["id"], drug="Ibuprofen"), \
            "application/fhir+json"
    if resource_type == "Binary":
        return "admin", factories.xray_png(64), "image/png"
    if resource_type == "Subscription":
        from tests.unit.subscriptions.conftest import subscription

        topic = next(e["valueCanonical"] for e in entry.get("extension", [])
                     if e["url"].endswith("subscriptiontopic-canonical"))
        return "system", subscription(hook, topic), "application/fhir+json"
    return None


def test_every_declared_interaction_parameter_include_and_operation(seeded):
    live, admin, writers, hook = seeded
    run = Run(live, admin, hook)
    statement = run.get("metadata").json()
    declared = {r["type"]: r for r in statement["rest"][0]["resource"]}
    samples: dict[str, list[dict]] = {}

    # search-type first: the samples every other check starts from.
    for resource_type, entry in declared.items():
        codes = {i["code"] for i in entry.get("interaction", [])}
        if "search-type" in codes:
            samples[resource_type] = run.all_matches(resource_type, [])
            if not samples[resource_type]:
                run.problem(resource_type, "the seeded server holds none to search")

    for resource_type, entry in declared.items():
        codes = {i["code"] for i in entry.get("interaction", [])}
        found = samples.get(resource_type, [])[:4]
        _check_instances(run, resource_type, codes, found)
        if "history-type" in codes:
            run.get(f"{resource_type}/_history")
        if "create" in codes or "update" in codes:
            _check_writes(run, resource_type, entry, samples, writers)
        for param in entry.get("searchParam", []):
            _check_parameter(run, resource_type, param, samples)
        if found:
            _check_result_shaping(run, resource_type, entry, found)
        for include in entry.get("searchInclude", []):
            _check_include(run, resource_type, include, "_include")
        for include in entry.get("searchRevInclude", []):
            _check_include(run, resource_type, include, "_revinclude")
        for operation in entry.get("operation", []):
            _check_operation(run, operation, resource_type)
    for operation in statement["rest"][0].get("operation", []):
        _check_operation(run, operation, None)

    # fhirpy, an integrator's client, reads the same statement and a page of each type.
    client = SyncFHIRClient(run.base, authorization=admin["Authorization"])
    for resource_type in samples:
        try:
            client.resources(resource_type).limit(5).fetch()
        except Exception as err:  # what fhirpy raises is the finding
            run.problem(f"fhirpy {resource_type}", str(err)[:300])

    assert not run.problems, "\n".join(dict.fromkeys(run.problems))


def _check_instances(run: Run, resource_type: str, codes: set[str],
                     found: list[dict]) -> None:
    for resource in found:
        where = f"{resource_type}/{resource['id']}"
        if "read" in codes:
            response = run.get(where)
            body = response.json()
            version, updated = body["meta"]["versionId"], body["meta"]["lastUpdated"]
            if response.headers.get("ETag") != f'W/"{version}"':
                run.problem(where, f"ETag {response.headers.get('ETag')} but versionId "
                                   f"{version}")
            if not _http_date_agrees(response.headers.get("Last-Modified"), updated):
                run.problem(where, f"Last-Modified {response.headers.get('Last-Modified')} "
                                   f"but lastUpdated {updated}")
            if resource_type not in GROWING and body != resource:
                run.problem(where, "the read differs from the search's entry")
            again = run.http.get(f"{run.base}/{where}", timeout=60,
                                 headers={"If-None-Match": f'W/"{version}"'})
            if again.status_code != 304:
                run.problem(where, f"If-None-Match the current ETag gave "
                                   f"{again.status_code}, expected 304")
            if "vread" in codes:
                old = run.get(f"{where}/_history/{version}").json()
                if old != body:
                    run.problem(where, f"vread of version {version} differs from the read")
        if "history-instance" in codes:
            history = run.get(f"{where}/_history").json()
            versions = {e["resource"]["meta"]["versionId"] for e in history.get("entry", [])}
            if history["type"] != "history" or resource["meta"]["versionId"] not in versions:
                run.problem(where, f"_history lacks the current version ({versions})")


def _check_versions(run: Run, where: str, read: requests.Response, entry: dict,
                    headers: dict[str, str]) -> None:
    """As a writer reads what it created (a Subscription is its client's alone): ETag and
    Last-Modified agree with meta, vread gives the read, `_history` holds every version up
    to the current one, and (where conditional reads are declared) If-None-Match the
    current ETag gives 304."""
    codes = {i["code"] for i in entry.get("interaction", [])}
    body = read.json()
    version, updated = body["meta"]["versionId"], body["meta"]["lastUpdated"]
    if read.headers.get("ETag") != f'W/"{version}"':
        run.problem(where, f"ETag {read.headers.get('ETag')} but versionId {version}")
    if not _http_date_agrees(read.headers.get("Last-Modified"), updated):
        run.problem(where, f"Last-Modified {read.headers.get('Last-Modified')} but "
                           f"lastUpdated {updated}")
    headers = {**headers, "Accept": "application/fhir+json"}
    again = requests.get(f"{run.base}/{where}", timeout=60,
                         headers={**headers, "If-None-Match": f'W/"{version}"'})
    if entry.get("conditionalRead") in ("not-match", "full-support") and \
            again.status_code != 304:
        run.problem(where, f"If-None-Match the current ETag gave {again.status_code}")
    if "vread" in codes:
        old = requests.get(f"{run.base}/{where}/_history/{version}", headers=headers,
                           timeout=60)
        run._check_response(f"GET {where}/_history/{version}", old, 200)
        if old.status_code == 200 and old.json() != body:
            run.problem(where, f"vread of version {version} differs from the read")
    if "history-instance" in codes:
        history = requests.get(f"{run.base}/{where}/_history", headers=headers, timeout=60)
        run._check_response(f"GET {where}/_history", history, 200)
        found = [e["resource"] for e in history.json().get("entry") or []] \
            if history.status_code == 200 else []
        numbers = sorted(int(r["meta"]["versionId"]) for r in found)
        if numbers != list(range(1, int(version) + 1)):
            run.problem(where, f"_history holds versions {numbers}, expected 1..{version}")
        stamps = [r["meta"]["lastUpdated"] for r in sorted(
            found, key=lambda r: int(r["meta"]["versionId"]))]
        if stamps != sorted(stamps, key=lambda s: datetime.fromisoformat(
                s.replace("Z", "+00:00"))):
            run.problem(where, f"lastUpdated goes back across versions: {stamps}")


def _check_writes(run: Run, resource_type: str, entry: dict,
                  samples: dict[str, list[dict]], writers: dict[str, dict]) -> None:
    codes = {i["code"] for i in entry.get("interaction", [])}
    planned = _create_request(resource_type, samples, entry, run.hook)
    if planned is None:
        run.problem(resource_type, "declared create/update, but this run has no body for it")
        return
    writer, body, content_type = planned
    headers = {**writers[writer], "Content-Type": content_type,
               "Accept": "application/fhir+json"}
    if "create" in codes:
        response = requests.post(f"{run.base}/{resource_type}", headers=headers, timeout=60,
                                 data=body if isinstance(body, bytes) else json.dumps(body))
        run._check_response(f"POST {resource_type}", response, 201)
        if response.status_code != 201:
            return
        created = response.json()
        if "read" in codes:
            read = requests.get(f"{run.base}/{resource_type}/{created['id']}", timeout=60,
                                headers={**writers[writer], "Accept": "application/fhir+json"})
            run._check_response(f"GET {resource_type}/{created['id']}", read, 200)
            if read.status_code == 200:
                _check_versions(run, f"{resource_type}/{created['id']}", read, entry,
                                writers[writer])
        location = response.headers.get("Location", "")
        if f"{resource_type}/{created['id']}" not in location:
            run.problem(resource_type, f"create's Location {location!r} names no new id")
        if "update" in codes:
            updated = requests.put(
                f"{run.base}/{resource_type}/{created['id']}", json=created, timeout=60,
                headers={**headers, "If-Match": response.headers.get("ETag", "")})
            run._check_response(f"PUT {resource_type}/{created['id']}", updated, 200)
            if updated.status_code == 200 and \
                    updated.json()["meta"]["versionId"] == created["meta"]["versionId"]:
                run.problem(resource_type, "an update kept the versionId")
        if "delete" in codes:
            gone = requests.delete(f"{run.base}/{resource_type}/{created['id']}",
                                   headers=headers, timeout=60)
            if gone.status_code not in (200, 204):
                run.problem(resource_type, f"delete gave {gone.status_code}")


def _paths(resource_type: str, param: dict) -> str | None:
    definition = param.get("definition") or ""
    if definition.startswith(R4):
        return R4_PATHS.get(definition.removeprefix(R4))
    return OWN_PATHS.get((resource_type, param["name"]))


def _check_parameter(run: Run, resource_type: str, param: dict,
                     samples: dict[str, list[dict]]) -> None:
    name, kind = param["name"], param["type"]
    where = f"{resource_type}?{name}"
    definition = param.get("definition")
    if not definition:
        run.problem(where, "no definition")
    elif definition.startswith(run.base):
        run.get(definition)  # our own SearchParameter is served
    if definition and definition.startswith(R4) and \
            definition.removeprefix(R4) not in R4_PATHS:
        run.problem(where, f"{definition} is no R4 SearchParameter this run knows")
    # A value that must find nothing.
    nothing = run.search(resource_type, [(name, NOTHING[kind])])
    if nothing is not None and nothing.get("total"):
        run.problem(where, f"{name}={NOTHING[kind]} found {nothing['total']}")
    # `_sort` by the parameter, both ways: the same resources, reversed.
    if resource_type not in GROWING and resource_type in samples:
        ids = {}
        for order in (name, f"-{name}"):
            ids[order] = [r["id"] for r in run.all_matches(resource_type, [("_sort", order)])]
        if sorted(ids[name]) != sorted(ids[f"-{name}"]):
            run.problem(where, f"_sort={name} and -{name} find different resources")
    path = _paths(resource_type, param)
    _check_missing(run, resource_type, name, path)
    # The round trip: each value read off a resource finds that resource (with `_id`, so
    # that a type growing as the run reads needs no walk through every page).
    for resource in samples.get(resource_type, [])[:2]:
        for value in _values_of(run, resource_type, name, kind, path, resource):
            found = run.search(resource_type, [(name, value), ("_id", resource["id"])])
            if found is not None and found.get("total") != 1:
                run.problem(where, f"{name}={value} does not find "
                                   f"{resource_type}/{resource['id']}, which holds it")
            if path and path != "@self" and resource_type not in GROWING and \
                    kind == "reference":
                for match in run.all_matches(resource_type, [(name, value)]):
                    held = {v.get("reference", "").split("/_history")[0]
                            for v in elements(match, path)}
                    if value.split("/_history")[0] not in held:
                        run.problem(where, f"{name}={value} found {resource_type}/"
                                           f"{match['id']}, which does not hold it")


def _check_missing(run: Run, resource_type: str, name: str, path: str | None) -> None:
    """`:missing` as R4 defines it: `true` finds the resources whose element has no value,
    `false` those whose element has one; so the two are disjoint and together are every
    resource. Anything but true/false is a 400 naming the parameter."""
    where = f"{resource_type}?{name}:missing"
    split: dict[str, set[str]] = {}
    for missing in ("true", "false"):
        bundle = run.search(resource_type, [(f"{name}:missing", missing), ("_count", "100")])
        if bundle is None:
            continue
        if any(e["search"]["mode"] == "outcome" for e in bundle.get("entry") or []):
            run.problem(where, f"={missing} was ignored (reported in an outcome)")
        if resource_type in GROWING:
            continue
        found = run.all_matches(resource_type, [(f"{name}:missing", missing)])
        split[missing] = {r["id"] for r in found}
        for resource in found if path else []:
            has = path == "@self" or bool(elements(resource, path))
            if has == (missing == "true"):
                run.problem(where, f"={missing} returned {resource_type}/{resource['id']}")
    if len(split) == 2:
        everything = {r["id"] for r in run.all_matches(resource_type, [])}
        both, either = split["true"] & split["false"], split["true"] | split["false"]
        if both:
            run.problem(where, f"true and false both find {sorted(both)[:3]}")
        if either != everything:
            run.problem(where, f"true and false together find {len(either)} of the "
                               f"{len(everything)} resources")
    refused = run.get(resource_type, [(f"{name}:missing", "maybe")], expect=400)
    if refused.status_code == 400 and f"{name}:missing" not in refused.text:
        run.problem(where, "=maybe was refused without naming the parameter")


def _values_of(run: Run, resource_type: str, name: str, kind: str, path: str | None,
               resource: dict) -> list[str]:
    if path == "@self":
        return [f"Patient/{resource['id']}"]
    if (resource_type, name) in VIA_STUDY:
        studies = [t["reference"].split("/_history")[0] for t in resource.get("target", [])
                   if t["reference"].startswith("ImagingStudy/")]
        return [run.get(s).json()["subject"]["reference"] for s in studies[:1]]
    if path is None:
        run.problem(f"{resource_type}?{name}", "this run does not know what the parameter "
                                                "searches: add it to R4_PATHS or OWN_PATHS")
        return []
    values = [v for element in elements(resource, path) for v in search_values(kind, element)]
    return list(dict.fromkeys(values))[:4]


def _check_result_shaping(run: Run, resource_type: str, entry: dict,
                          found: list[dict]) -> None:
    for summary in ("true", "text", "data", "false"):
        run.search(resource_type, [("_summary", summary)])
    count = run.search(resource_type, [("_summary", "count")])
    if count is not None and (count.get("entry") or count.get("total") is None):
        run.problem(f"{resource_type}?_summary=count", "entries, or no total")
    shaped = run.search(resource_type, [("_elements", "id"), ("_count", "3")])
    for item in (shaped or {}).get("entry") or []:
        extra = set(item["resource"]) - {"resourceType", "id", "meta"} - \
            _mandatory(resource_type)
        if extra:
            run.problem(f"{resource_type}?_elements=id", f"also sent {sorted(extra)}")
    if resource_type not in GROWING:
        walked = run.all_matches(resource_type, [], count=2)  # small pages, cursor walk
        if {r["id"] for r in walked} != {r["id"] for r in run.all_matches(resource_type, [])}:
            run.problem(f"{resource_type}?_count=2", "paging finds other resources")
        one = run.search(resource_type, [("_count", "1")])
        if one is not None and len([e for e in one.get("entry") or []
                                    if e["search"]["mode"] == "match"]) > 1:
            run.problem(f"{resource_type}?_count=1", "more than one match")


def _mandatory(resource_type: str) -> set[str]:
    """The elements R4 requires of a type (a cut keeps them: FHIR says servers SHOULD)."""
    from adapters.fhir.validation import model_class

    flags = ("element_required", "one_of_many_required")
    return {field.alias or name for name, field in model_class(resource_type).model_fields.items()
            if field.is_required() or any((field.json_schema_extra or {}).get(f)
                                           for f in flags)}


def _check_include(run: Run, resource_type: str, include: str, kind: str) -> None:
    bundle = run.search(resource_type, [(kind, include), ("_count", "100")])
    if bundle is None:
        return
    entries = bundle.get("entry") or []
    matched = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries
               if e["search"]["mode"] == "match"}
    included = [e["resource"] for e in entries if e["search"]["mode"] == "include"]
    source_type, param = include.split(":")[:2]
    path = R4_PATHS.get(f"{source_type}-{param}") or {"patient": "subject",
                                                      "result": "result"}.get(param)
    for resource in included if kind == "_revinclude" else []:
        pointed = {v.get("reference", "").split("/_history")[0]
                   for v in elements(resource, path)}
        if not pointed & matched:
            run.problem(f"{resource_type}?{kind}={include}",
                        f"{resource['resourceType']}/{resource['id']} references no match")
    if kind == "_include":
        wanted = {v["reference"].split("/_history")[0] for e in entries
                  if e["search"]["mode"] == "match"
                  for v in elements(e["resource"], path) if v.get("reference")}
        have = {f"{r['resourceType']}/{r['id']}" for r in included} | matched
        if wanted - have:
            run.problem(f"{resource_type}?{kind}={include}",
                        f"does not include {sorted(wanted - have)[:3]}")


def _check_operation(run: Run, operation: dict, resource_type: str | None) -> None:
    where = f"${operation['name']} on {resource_type}"
    definition = operation.get("definition", "")
    if not definition.startswith(run.base):
        return  # HL7's own (e.g. $validate), not served here
    response = run.get(definition)
    if response.status_code != 200:
        return
    body = response.json()
    if body.get("resourceType") != "OperationDefinition" or body.get("url") != definition:
        run.problem(where, f"{definition} is no OperationDefinition with that url")
    if body.get("code") != operation["name"]:
        run.problem(where, f"OperationDefinition.code {body.get('code')}")
    if resource_type and resource_type not in body.get("resource", []):
        run.problem(where, f"OperationDefinition.resource {body.get('resource')}")
