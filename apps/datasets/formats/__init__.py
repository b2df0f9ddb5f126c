"""Streaming readers for the dataset formats Retort imports. Pure Python: no Django here.

`read_records(path, fmt)` yields `Record` for each good record and `RecordProblem` for each bad one, so
the caller decides whether one bad record sinks the file. A problem that makes the rest of the file
unreadable (broken JSON syntax in an array, a truncated file) raises `FileFormatError` instead.
"""

from apps.datasets.formats.detect import FORMATS, detect_format
from apps.datasets.formats.readers import read_records
from apps.datasets.formats.records import FileFormatError, Record, RecordProblem, content_hash

__all__ = ["FORMATS", "FileFormatError", "Record", "RecordProblem", "content_hash", "detect_format", "read_records"]
