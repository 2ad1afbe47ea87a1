"""dicomweb: the DICOMweb doors (PS3.18) under /dicomweb: STOW-RS, QIDO-RS, WADO-RS.

A thin blueprint (`views`) over the scan workflow: stored instances go through
`workflow.receive` (the ingest of `$upload`), reads through `queries` with the access rules of
/fhir. `multipart` and `attributes` are formats only. No rules live here.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from csss_fhir.dicomweb import views

    app.register_blueprint(views.bp)
