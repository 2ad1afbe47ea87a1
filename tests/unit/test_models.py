"""The models package re-exports every table and the enums that moved out of it."""

from __future__ import annotations

import subprocess
import sys

import csss_fhir.models as models
from csss_fhir.models import Role, ScanState, db
from csss_fhir.security import access
from csss_fhir.workflow import states


def test_every_mapped_class_is_importable_from_the_package():
    mapped = [mapper.class_ for mapper in db.Model.registry.mappers]
    missing = sorted(cls.__name__ for cls in mapped
                     if getattr(models, cls.__name__, None) is not cls
                     or cls.__name__ not in models.__all__)
    assert not missing, f"add {missing} to csss_fhir/models/__init__.py and its __all__"


def test_every_name_in_all_resolves():
    for name in models.__all__:
        assert getattr(models, name) is not None, name


def test_enums_are_the_ones_their_rules_use():
    assert ScanState is states.ScanState
    assert Role is access.Role


def test_importing_the_models_does_not_import_the_workflow():
    # The re-export of ScanState is lazy: an eager one would run `csss_fhir.workflow`'s
    # __init__, whose commands import this package half-built.
    code = ("import sys, csss_fhir.models; "
            "assert 'csss_fhir.workflow' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
