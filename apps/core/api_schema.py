"""The OpenAPI schema generator: drf-spectacular's, plus the error answers every endpoint can give, so that
the schema names each status code the implementation returns (checked by schemathesis in
tests/api/test_schema_contract.py).

Every operation may answer 401 (no credentials) and 403 (a role it lacks); one with a path id, a cursor
or an object lookup may answer 404; one that reads a body or query parameters may answer 400."""

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ApiErrorSerializer(serializers.Serializer):
    """An error: `detail` says what went wrong; a 400 for bad fields names each field instead, with its
    problems as a list (DRF's shape)."""

    detail = serializers.CharField(required=False, help_text="What went wrong, in words.")


class RetortAutoSchema(AutoSchema):
    def _error_codes(self) -> list[str]:
        codes = ["401", "403"]
        if "{" in self.path or self._is_list_view():
            codes.append("404")  # an unknown id, or a cursor that does not decode
        reads_input = self.method in ("POST", "PUT", "PATCH") or self._is_list_view()
        reads_input = reads_input or any(p.get("in") == "query" for p in self._process_override_parameters().values())
        if reads_input:
            codes.append("400")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ApiErrorSerializer, code, direction=direction)
        return responses
