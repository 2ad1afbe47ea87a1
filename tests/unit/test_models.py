"""The models package re-exports every table and the enums that moved out of it."""

from __future__ import annotations

import subprocess
import sys

import csss_fhir.models as models
from csss_fhir.models import Role, db
from csss_fhir.security import access
from csss_fhir.workflow import states
from csss_fhir.workflow.states import ScanState


def test_every_mapped_class_is_importable_from_the_package():
    mapped = [mapper.class_ for mapper in db.Model.registry.mappers]
    missing = sorted(cls.__name__ for cls in mapped
                     if getattr(models, cls.__name__, None) is not cls
                     or cls.__name__ not in models.__all__)
    assert not missing, f"add {missing} to csss_fhir/models/__init__.py and its __all__"


def test_every_name_in_all_resolves():
    for name in models.__all__:
        assert getattr(models, name) is not None, name


def test_enums_live_beside_their_rules():
    assert Role is access.Role
    assert ScanState is states.ScanState
    assert not hasattr(models, "ScanState")  # one home: csss_fhir.workflow.states


def test_importing_the_models_does_not_import_the_workflow():
    # The tables sit below the workflow: `csss_fhir.workflow`'s __init__ imports the
    # commands, which import this package.
    code = ("import sys, csss_fhir.models; "
            "assert 'csss_fhir.workflow' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
