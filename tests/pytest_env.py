"""Loaded with `-p` before Django settings: tests get their own var/ folder (SQLite file, broker
folders, cache), so a running `make run` never sees test tasks and tests never see its data."""

import os
from pathlib import Path

os.environ.setdefault("RETORT_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Test clients and the browser's live server speak plain HTTP; production mode would redirect to HTTPS.
# Set here, before settings load, because the live server's middleware is built before any fixture runs.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
