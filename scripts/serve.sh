#!/usr/bin/env bash
# Quick start, command 1: install into .venv, create the SQLite database and the demo users
# (printed with their passwords), and serve on http://127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/csss db upgrade
.venv/bin/csss demo seed
exec .venv/bin/flask --app wsgi run --host 127.0.0.1 --port "${PORT:-5000}"
