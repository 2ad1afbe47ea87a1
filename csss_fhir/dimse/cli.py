"""`csss dicom listen`: run the C-ECHO / C-STORE SCP in the foreground."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext

from csss_fhir.errors import ConfigurationError
from csss_fhir.extensions import services


@click.group("dicom")
def dicom_group() -> None:
    """DICOM network services (DIMSE)."""


@dicom_group.command("listen")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=None, help="Port (default: DICOM_PORT).")
@with_appcontext
def listen(host: str, port: int | None) -> None:
    """Accept C-ECHO and C-STORE from the AE titles in DICOM_ALLOWED_AE_TITLES."""
    from csss_fhir.dimse import listener

    settings = services().settings
    port = port or settings.dicom_port
    # pynetdicom's INFO lines describe every association; its DEBUG ones dump data sets.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    click.echo(f"listening as {settings.dicom_ae_title} on {host}:{port} for "
               f"{', '.join(settings.dicom_allowed_ae_titles) or '(nobody)'}; Ctrl-C stops")
    try:
        listener.serve(current_app._get_current_object(), host, port, block=True)
    except ConfigurationError as err:
        raise click.ClickException(str(err)) from err
