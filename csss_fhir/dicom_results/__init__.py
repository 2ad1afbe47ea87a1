"""dicom_results: a released report's AI result back as DICOM (issue 17 item 3).

On release ($approve) and on every approved amendment, `results.record` builds, in the
release's transaction, a Comprehensive 3D SR (TID 1500) with the AI proposal, the
probabilities, the model and the verifying doctor, and — when the classifier gives one — the
Grad-CAM overlay as a Secondary Capture image (`adapters.dicom_sr`), both in the scan's own
study; stores them as blobs with a `DicomResult` row each, which WADO-RS and QIDO-RS serve
(`csss_fhir.dicomweb`). When PACS_DESTINATION is set it also writes a `PacsExport` row and
enqueues the `send_dicom` job after the commit; `export.send` sends both instances by
C-STORE in one association, retried with back-off (`csss_fhir.jobs`).
"""
