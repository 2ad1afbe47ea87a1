"""WSGI entry point: `gunicorn wsgi:app` or `flask --app wsgi run`."""

from csss_fhir import create_app

app = create_app()
