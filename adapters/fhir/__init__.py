"""Domain objects <-> FHIR R4 resources, built as `fhir.resources.R4B` models.

fhir.resources 8 has no R4 package; R4B is wire-compatible with R4 for every resource we emit,
and building the model validates each resource before it leaves the server.
"""
