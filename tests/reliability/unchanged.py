"""Refused input must change nothing: a fingerprint of every table, to take before and after.

Each concrete model's rows are counted and their values hashed (in primary-key order), so a refused
request that updated a row in place is caught as well as one that added or deleted rows. The test
databases these tests use are small, so reading every row costs milliseconds.
"""

import hashlib

from django.apps import apps


def db_fingerprint(*, ignore=()) -> dict[str, tuple[int, str]]:
    """{"app_label.Model": (row count, sha256 of the rows)} for every model but those in `ignore`."""
    skip = {model._meta.label for model in ignore}
    fingerprint = {}
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed or meta.label in skip:
            continue
        digest = hashlib.sha256()
        count = 0
        for row in model._base_manager.order_by("pk").values_list():
            digest.update(repr(row).encode())
            count += 1
        fingerprint[meta.label] = (count, digest.hexdigest()[:16])
    return fingerprint


def changed_tables(before: dict, after: dict) -> list[str]:
    """The models whose rows differ between two fingerprints, with their row counts."""
    return [
        f"{label}: {before.get(label, (0, ''))[0]} -> {after.get(label, (0, ''))[0]} rows"
        for label in sorted(set(before) | set(after))
        if before.get(label) != after.get(label)
    ]
