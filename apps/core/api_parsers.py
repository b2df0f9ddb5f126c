"""The API's JSON parser: DRF's, except that a body nesting arrays and objects more than MAX_DEPTH levels
is a 400 saying so. The limit is checked on the bytes first: Python's decoder recurses once a level, so
without it a deep body would be a RecursionError (a 500), or parse or not by how deep the stack was."""

import io

from rest_framework import exceptions, parsers

from apps.core.json_depth import DepthGuard, NestedTooDeep

MAX_DEPTH = 255


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        try:
            DepthGuard(MAX_DEPTH).feed(body, 1)
        except NestedTooDeep as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        return super().parse(io.BytesIO(body), media_type, parser_context)
