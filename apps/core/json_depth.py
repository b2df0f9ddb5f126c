"""How deeply a JSON text nests its arrays and objects, checked on the bytes as they stream past.

Imports use it because ijson keeps the path to the value it is building at every level, so a small file of nothing but
brackets makes it hold memory that grows with the square of the depth (a 100 KB file of 50,000 `[`
took 6 GB). The API's parser uses it because Python's decoder recurses once a level, so whether a deep
body parses would depend on how deep the stack already is. Either way the text is refused at the first
bracket past a fixed limit, before a parser sees it.

It works on whole chunks with bytes methods (C loops), not byte by byte: escaped backslashes and
escaped quotes are removed, then everything but quotes, brackets and newlines, and the pieces between
quotes alternate between outside and inside a string. Only when a chunk could pass the limit are its
brackets walked one by one, to name the line.
"""


class NestedTooDeep(ValueError):
    def __init__(self, line: int, limit: int):
        super().__init__(f"arrays and objects are nested more than {limit} levels deep")
        self.line, self.limit = line, limit


_DROP = bytes(b for b in range(256) if b not in b'[]{}"\n')


class DepthGuard:
    def __init__(self, limit: int):
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._carry = b""  # a chunk's trailing backslashes: what they escape is in the next chunk

    def feed(self, data: bytes, line: int) -> None:
        """Check the next chunk; `line` is the line the chunk starts on (for the message)."""
        data = self._carry + data
        body = data.rstrip(b"\\")
        self._carry = data[len(body) :]
        if b"\\" in body:  # an escaped backslash is no escape; an escaped quote ends no string
            body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
        marks = body.translate(None, _DROP)
        pieces = marks.split(b'"')
        outside = b"".join(pieces[1::2] if self._in_string else pieces[0::2])
        if len(pieces) % 2 == 0:  # an odd number of quotes: a string goes on into the next chunk
            self._in_string = not self._in_string
        opens = outside.count(b"[") + outside.count(b"{")
        if self.depth + opens <= self.limit:
            self.depth += opens - outside.count(b"]") - outside.count(b"}")
            return
        for byte in outside:
            if byte == 0x0A:  # newline
                line += 1
            elif byte in b"[{":
                self.depth += 1
                if self.depth > self.limit:
                    raise NestedTooDeep(line, self.limit)
            else:
                self.depth -= 1
