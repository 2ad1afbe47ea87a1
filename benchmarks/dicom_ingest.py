"""Throughput of the DICOM doors: STOW-RS and C-STORE into a fresh SQLite database.

    python benchmarks/dicom_ingest.py [--stow 100] [--cstore 50] [--size 512]

STOW-RS: `--stow` CR instances (each its own study, size x size pixels, 16 bits) in one
multipart/related request, and the same number again in requests of 10, against the app
served on loopback (werkzeug, threaded) with a system client's token. C-STORE: `--cstore`
instances over one association to the listener (pynetdicom, in a thread). Each instance is
fully checked (header, pixel decode), stored, and gets its scan, Task, provenance and audit
row: the figures are the whole ingest, not the transport.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pydicom
import requests
from pynetdicom import AE

from csss_fhir import migrate
from csss_fhir.dicomweb.multipart import build_related
from csss_fhir.dimse import listener
from csss_fhir.models import db
from csss_fhir.security import clients
from tests import factories
from tests.servers import free_port, serve_app

MRN = "BENCH-1"


def instances(count: int, size: int, seed: int) -> list[bytes]:
    return [factories.radiograph(MRN, size=size, seed=seed + n) for n in range(count)]


def stow(url: str, token: str, batch: list[bytes]) -> None:
    body, content_type = build_related(batch)
    response = requests.post(f"{url}/dicomweb/studies", data=body, timeout=600, headers={
        "Authorization": f"Bearer {token}", "Content-Type": content_type,
        "Accept": "application/dicom+json"})
    assert response.status_code == 200, response.text[:500]


def timed_stow(url: str, token: str, data: list[bytes], per_request: int) -> float:
    start = time.perf_counter()
    for first in range(0, len(data), per_request):
        stow(url, token, data[first:first + per_request])
    return len(data) / (time.perf_counter() - start)


def timed_cstore(port: int, data: list[bytes]) -> float:
    datasets = [pydicom.dcmread(io.BytesIO(d)) for d in data]
    ae = AE(ae_title="BENCH_SCU")
    ae.add_requested_context(datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID)
    start = time.perf_counter()
    association = ae.associate("127.0.0.1", port, ae_title="CSSS")
    assert association.is_established
    for dataset in datasets:
        assert association.send_c_store(dataset).Status == 0x0000
    association.release()
    return len(datasets) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stow", type=int, default=100)
    parser.add_argument("--cstore", type=int, default=50)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    settings = factories.settings_for(root / "instance", f"sqlite:///{root}/bench.db",
                                      dicom_allowed_ae_titles=("BENCH_SCU",))
    with serve_app(settings) as live:
        migrate.upgrade(live.app)
        with live.app.app_context():
            factories.make_user("patient", mrn=MRN)
            new = clients.create_client(db.session, "bench", "system/ImagingStudy.write")
        token = requests.post(live("/auth/token"), timeout=30, data={
            "grant_type": "client_credentials", "client_id": new.client_id,
            "client_secret": new.client_secret}).json()["access_token"]
        one = timed_stow(live.url, token, instances(args.stow, args.size, 0), args.stow)
        tens = timed_stow(live.url, token, instances(args.stow, args.size, 10**6), 10)
        port = free_port()
        server = listener.serve(live.app, "127.0.0.1", port)
        try:
            dimse = timed_cstore(port, instances(args.cstore, args.size, 2 * 10**6))
        finally:
            server.shutdown()
    kib = len(instances(1, args.size, 0)[0]) // 1024
    print(f"instances: CR, {args.size}x{args.size} 16-bit, {kib} KiB each, SQLite")
    print(f"STOW-RS  {args.stow} instances in 1 request : {one:6.1f} instances/s")
    print(f"STOW-RS  {args.stow} instances, 10 a request: {tens:6.1f} instances/s")
    print(f"C-STORE  {args.cstore} instances, 1 association: {dimse:6.1f} instances/s")


if __name__ == "__main__":
    main()
