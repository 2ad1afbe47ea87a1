"""search: FHIR search and reads by id over the domain tables; no Flask, no commits.

- parameters.py: the declared search parameters (`PARAMETERS`), the single source the
  CapabilityStatement reads, and what each means (R4's definition, or `OWN_PARAMETERS`);
- values.py: the FHIR value rules (token, date, string, reference; comma is OR; `:missing`);
- query.py: request parameters -> SQL, paging, sorting, _summary=count; `search`, `find`;
- includes.py: `_include` and `_revinclude`;
- visibility.py: which rows a caller may see, the one check every query and include passes,
  so a patient's search can only ever return that patient's rows of the types a patient may
  read.
"""

from __future__ import annotations

from csss_fhir.search.includes import INCLUDES, REVINCLUDES
from csss_fhir.search.parameters import (
    OWN_PARAMETERS,
    PARAMETERS,
    Param,
    parameter_modifiers,
    parameter_types,
    standard_definition,
)
from csss_fhir.search.query import (
    DEFAULT_COUNT,
    MAX_COUNT,
    SearchRequest,
    SearchResult,
    find,
    find_with_stored,
    search,
)
from csss_fhir.search.visibility import Viewer

__all__ = ["DEFAULT_COUNT", "INCLUDES", "MAX_COUNT", "OWN_PARAMETERS", "PARAMETERS", "Param",
           "REVINCLUDES", "SearchRequest", "SearchResult", "Viewer", "find", "find_with_stored",
           "parameter_modifiers", "parameter_types", "search", "standard_definition"]
