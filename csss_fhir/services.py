"""The long-lived parts one app instance shares, built once by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from csss_fhir.classifier import ClassifierProvider
from csss_fhir.mail.backends import FileBackend, SmtpBackend
from csss_fhir.settings import Settings
from csss_fhir.store import BlobStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    instance_path: Path
    store: BlobStore
    mail: FileBackend | SmtpBackend
    classifier: ClassifierProvider


def services() -> Services:
    return current_app.extensions["csss"]
