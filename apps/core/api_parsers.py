"""The API's JSON parser: DRF's, except that a body nested deeper than Python's JSON decoder can recurse
(about a thousand levels) is a 400 saying so, not a RecursionError and a 500."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - arrays and objects are nested too deeply") from None
