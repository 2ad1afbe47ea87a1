"""CSSS-FHIR: an AI chest-scan workflow exposed as FHIR R4.

`create_app` lives in `csss_fhir.app`; it is re-exported lazily so that importing a domain
module (errors, models) does not import the web stack.
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    from csss_fhir.app import create_app as factory

    return factory(*args, **kwargs)
