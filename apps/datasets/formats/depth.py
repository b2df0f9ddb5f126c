"""How deeply a JSON text nests its arrays and objects, checked on the bytes as they stream past.

ijson keeps the path to the value it is building at every level, so a small file of nothing but
brackets makes it hold memory that grows with the square of the depth (a 100 KB file of 50,000 `[`
took 6 GB). This guard refuses the file at the first bracket past the limit, before ijson sees it.

It works on whole chunks with bytes methods (C loops), not byte by byte: escaped backslashes and
escaped quotes are removed, then everything but quotes, brackets and newlines, and the pieces between
quotes alternate between outside and inside a string. Only when a chunk could pass the limit are its
brackets walked one by one, to name the line.
"""

from apps.datasets.formats.records import FileFormatError

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
                    raise FileFormatError(
                        f"line {line}", f"arrays and objects are nested more than {self.limit} levels deep"
                    )
            else:
                self.depth -= 1
