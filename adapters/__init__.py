"""adapters: format boundaries (FHIR resources, DICOM, image files); no Flask, no database.

They read domain objects and plain values and return `fhir.resources` models or validated
values; they never open a session or touch a request.
"""
