"""dimse: the DICOM network door (PS3.7): a C-ECHO and C-STORE SCP on pynetdicom.

`listener` runs the Application Entity; every received instance goes through
`workflow.receive`, the ingest of `$upload` and STOW-RS. `cli` adds `csss dicom listen`.
DIMSE has no passwords: the calling AE title must be in DICOM_ALLOWED_AE_TITLES.
"""
