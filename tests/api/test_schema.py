"""The OpenAPI schema passes drf-spectacular's own validation with warnings as errors, and describes
every route the API serves (what the server does is checked in test_schema_contract.py)."""

import pytest
import yaml
from django.core.management import call_command

from tests.api.test_roles import _methods, _routes

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_a_warning(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    documented = {(path, method.upper()) for path, ops in schema["paths"].items() for method in ops}
    served = set()
    for route, cls in _routes():
        if route.startswith("api/v1/"):
            path = "/" + route.replace("<int:pk>", "{id}").replace("<str:name>", "{name}")
            path = path.replace("<slug:template_id>", "{template_id}").replace("<int:version>", "{version}")
            served |= {(path, method) for method in _methods(cls)}
    assert sorted(served - documented) == []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert {"401", "403"} <= set(op["responses"]), (method, path)
            assert op.get("description"), (method, path)
