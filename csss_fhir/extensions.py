"""The long-lived parts one app instance shares, built once by `create_app`.

They are kept where Flask keeps extension state, `app.extensions["csss"]`: settings, the
blob store, the mail backend and the classifier. `services()` fetches them for the current app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from csss_fhir.classifier import ClassifierProvider
from csss_fhir.mail.backends import FileBackend, SmtpBackend
from csss_fhir.settings import Settings
from csss_fhir.storage import BlobStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    instance_path: Path
    store: BlobStore
    mail: FileBackend | SmtpBackend
    classifier: ClassifierProvider


def services() -> Services:
    """The current app's shared parts (needs an app context)."""
    return current_app.extensions["csss"]
