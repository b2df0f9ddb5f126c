"""Bad input, dataset imports: a corpus of malformed files beyond tests/apps/datasets/test_import_malformed.py
(encodings, BOMs, compressed files, deep nesting, repeated keys, NUL and control bytes, huge fields and
line counts, truncated parquet, content that is not what its name says).

Each refused file fails through the import service, the import_dataset command and the upload API (a
worker's run, here in-process) with a message that says what is wrong and where, and leaves every table
as it was (the command and the upload keep only their failed import job). Text that is valid, however
hostile (SQL, Django template tags, control characters), is stored byte for byte and shown escaped,
never evaluated. The files are made in tmp_path by the builders below.
"""

import bz2
import gzip
import html
import io
import json
import lzma
import zipfile
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.core.roles import Role
from apps.core.services import user_grant_role
from apps.datasets.importing import ImportFailed, dataset_import_file
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.datasets.services import import_job_run
from tests.reliability.unchanged import changed_tables, db_fingerprint

pytestmark = pytest.mark.django_db

GOOD = {"instruction": "Name three primary colours.", "output": "Red, yellow and blue."}
MB = 1024 * 1024


def jsonl(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def parquet(rows, *, cut=None):
    def write(path):
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows() if callable(rows) else rows), buf)
        data = buf.getvalue()
        path.write_bytes(data if cut is None else data[: cut(len(data))])

    return write


def later(make):
    """A builder that makes a big content only when its case runs (not when the module is collected)."""
    return lambda path: path.write_bytes(make())


def gzip_bomb(path):
    """64 MiB of zeros in about 64 KB (a thousand to one): refused from its first bytes, never unpacked."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    with open(path, "wb") as f:
        zeros = bytes(MB)
        for _ in range(64):
            f.write(packer.compress(zeros))
        f.write(packer.flush())


def zipped(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("seeds.jsonl", jsonl(GOOD))
    path.write_bytes(buf.getvalue())


def deep(levels: int, *, jsonl_line=False) -> bytes:
    nested = b"[" * levels + b"]" * levels
    record = b'{"instruction": "Deep.", "meta": ' + nested + b"}"
    return record + b"\n" if jsonl_line else b"[" + record + b"]"


def blank_lines_then(count: int, tail: bytes = b"") -> bytes:
    return b"\n" * count + tail


# (id, file name, content or builder, format, the message must contain each of these; "heavy" runs
# through the service only, to keep the command and upload runs quick)
# fmt: off
REFUSED = [
    # encodings
    ("utf16-le-no-bom-jsonl", "s.jsonl", jsonl(GOOD).decode().encode("utf-16-le"), "auto", ["line 1", "UTF-16"]),
    ("utf16-bom-jsonl", "s.jsonl", jsonl(GOOD).decode().encode("utf-16"), "auto", ["line 1", "UTF-16", "UTF-8"]),
    ("utf16-be-bom-json", "s.json", json.dumps([GOOD]).encode("utf-16-be").join([b"\xfe\xff", b""]), "auto",
     ["UTF-16"]),
    ("utf16-le-no-bom-csv", "s.csv", "instruction,output\nHi,there\n".encode("utf-16-le"), "auto",
     ["line 1", "UTF-16"]),
    ("utf16-forced-jsonl", "s.txt", jsonl(GOOD).decode().encode("utf-16"), "jsonl", ["UTF-16"]),
    ("utf32-bom-jsonl", "s.jsonl", jsonl(GOOD).decode().encode("utf-32"), "auto", ["UTF-16 (or UTF-32)"]),
    ("latin1-first-line", "s.jsonl", '{"instruction": "Café au lait?"}\n'.encode("latin-1"), "auto",
     ["line 1", "invalid UTF-8 at byte 21"]),
    ("latin1-line-3", "s.jsonl", jsonl(GOOD, {"instruction": "Two."}) + '{"instruction": "Ol\xe9"}\n'.encode("latin-1"),
     "auto", ["line 3", "invalid UTF-8"]),
    ("latin1-json-array", "s.json", b'[\n{"instruction": "ok"},\n\n{"instruction": "caf\xe9"}]', "auto",
     ["line 4", "invalid UTF-8"]),
    ("overlong-utf8", "s.jsonl", jsonl(GOOD) + b'{"instruction": "\xc0\xaf"}\n', "auto", ["line 2", "invalid UTF-8"]),
    ("cut-multibyte-at-eof", "s.jsonl", jsonl(GOOD) + '{"instruction": "€"}'.encode()[:-3], "auto",
     ["line 2", "invalid UTF-8"]),
    ("lone-surrogate-escape", "s.jsonl", jsonl(GOOD, b'{"instruction": "a\\ud800b"}'), "auto",
     ["line 2", "invalid JSON", "surrogate"]),
    # byte order marks
    ("bom-mid-file", "s.jsonl", jsonl(GOOD) + b"\xef\xbb\xbf" + jsonl({"instruction": "Two."}), "auto",
     ["line 2", "invalid JSON"]),
    ("two-boms", "s.jsonl", b"\xef\xbb\xbf\xef\xbb\xbf" + jsonl(GOOD), "auto", ["line 1"]),
    # truncated
    ("parquet-no-footer", "s.parquet", parquet([GOOD] * 50, cut=lambda n: n - 40), "auto",
     ["not a readable parquet file"]),
    ("parquet-cut-in-half", "s.parquet", parquet([GOOD] * 50, cut=lambda n: n // 2), "auto",
     ["not a readable parquet file"]),
    ("parquet-magic-only", "s.parquet", b"PAR1", "auto", ["not a readable parquet file"]),
    ("json-array-cut-after-comma", "s.json", json.dumps([GOOD]).encode()[:-1] + b",", "auto",
     ["record 2", "truncated"]),
    ("json-array-just-bracket", "s.json", b"[", "auto", ["record 1", "truncated"]),
    ("jsonl-cut-mid-escape", "s.jsonl", jsonl(GOOD) + b'{"instruction": "caf\\u00', "auto",
     ["line 2", "invalid JSON", "truncated"]),
    ("csv-unclosed-quote", "s.csv", b'instruction,output\nHello,"there\n', "auto",
     ["line 2", "still open", "truncated"]),
    ("csv-text-after-quote", "s.csv", b'instruction,output\nfine,ok\n"Hello" there,x\n', "auto",
     ["line 3", "malformed CSV", "',' expected after '\"'"]),
    # compressed, archives, other content
    ("gzip-named-gz", "s.jsonl.gz", gzip.compress(jsonl(GOOD)), "auto", ["gzip-compressed", "decompress"]),
    ("gzip-named-jsonl", "s.jsonl", gzip.compress(jsonl(GOOD)), "auto", ["gzip-compressed"]),
    ("gzip-forced-jsonl", "s.jsonl", gzip.compress(jsonl(GOOD)), "jsonl", ["gzip-compressed"]),
    ("gzip-bomb", "bomb.json.gz", gzip_bomb, "auto", ["gzip-compressed"], "heavy"),
    ("zip-named-json", "s.json", zipped, "auto", ["a zip archive"]),
    ("bzip2-named-csv", "s.csv", bz2.compress(b"instruction\nHello\n"), "auto", ["bzip2-compressed"]),
    ("xz-named-jsonl", "s.jsonl", lzma.compress(jsonl(GOOD)), "auto", ["xz-compressed"]),
    ("csv-named-json", "s.json", b"instruction,output\nHi,there\n", "auto", ["line 1", "must start with '['"]),
    ("json-named-csv", "s.csv", json.dumps([GOOD]).encode(), "auto", ["line 1", "no 'instruction' column"]),
    ("jsonl-named-parquet", "s.parquet", jsonl(GOOD), "auto", ["not a readable parquet file"]),
    ("png-named-jsonl", "s.jsonl", b"\x89PNG\r\n\x1a\n" + bytes(64), "auto", ["line 1"]),
    ("csv-forced-parquet", "s.csv", b"instruction\nHello\n", "parquet", ["not a readable parquet file"]),
    ("jsonl-forced-csv", "s.jsonl", jsonl(GOOD), "csv", ["line 1", "no 'instruction' column"]),
    ("jsonl-forced-sharegpt", "s.jsonl", jsonl(GOOD), "sharegpt", ["line 1", "expected a ShareGPT record"]),
    # nesting
    ("deep-10k-json-array", "s.json", deep(10_000), "auto", ["line 1", "nested more than 255 levels"]),
    ("deep-50k-json-array", "s.json", deep(50_000), "auto", ["line 1", "nested more than 255 levels"]),
    ("deep-300-json-array", "s.json", deep(300), "auto", ["nested more than 255 levels"]),
    ("deep-10k-jsonl", "s.jsonl", deep(10_000, jsonl_line=True), "auto", ["line 1", "invalid JSON", "depth"]),
    ("deep-500-jsonl-metadata", "s.jsonl", jsonl(GOOD) + deep(500, jsonl_line=True), "auto",
     ["line 2", "more than 255 levels deep"]),
    ("object-instruction-array", "s.json", json.dumps([{"instruction": {"text": "hi"}}]).encode(), "auto",
     ["record 1", "'instruction' must be a string, got an object"]),
    ("list-output-jsonl", "s.jsonl", jsonl({"instruction": "x", "output": ["a", "b"]}), "auto",
     ["line 1", "'output' must be a string, got an array"]),
    ("object-category", "s.jsonl", jsonl({"instruction": "x", "category": {"name": "Math"}}), "auto",
     ["line 1", "'category' must be a string, got an object"]),
    ("bool-label", "s.jsonl", jsonl({"instruction": "x", "label": True}), "auto",
     ["line 1", "'label' must be a string, got a boolean"]),
    ("array-of-arrays", "s.json", b'[["Name three primary colours.", "Red."]]', "auto",
     ["record 1", "expected a JSON object", "got an array"]),
    ("array-line-in-jsonl", "s.jsonl", jsonl(GOOD, [1, 2]), "auto", ["line 2", "got an array"]),
    ("null-line-in-jsonl", "s.jsonl", jsonl(GOOD, None), "auto", ["line 2", "got null"]),
    ("sharegpt-object-value", "s.jsonl", jsonl({"conversations": [{"from": "human", "value": {"t": "hi"}}]}), "auto",
     ["line 1", "message 1 content must be a string, got an object"]),
    ("openai-messages-string", "s.jsonl", jsonl({"messages": "hello"}), "auto",
     ["line 1", "'messages' must be a non-empty array"]),
    ("parquet-struct-instruction", "s.parquet", parquet([{"instruction": {"a": "b"}}]), "auto",
     ["row 1", "'instruction' must be a string, got an object"]),
    ("parquet-int-instruction", "s.parquet", parquet([{"instruction": 7}]), "auto",
     ["row 1", "'instruction' must be a string, got a number"]),
    # repeated keys
    ("repeated-instruction-key", "s.jsonl", jsonl(GOOD, b'{"instruction": "a", "instruction": "b"}'), "auto",
     ["line 2", "the key 'instruction' appears twice"]),
    ("repeated-output-key", "s.jsonl", jsonl(b'{"instruction": "a", "output": "x", "output": "y"}'), "auto",
     ["line 1", "the key 'output' appears twice"]),
    ("repeated-key-in-a-turn", "s.jsonl", jsonl(b'{"conversations": [{"from": "human", "value": "a", "value": "b"}]}'),
     "auto", ["line 1", "the key 'value' appears twice"]),
    # NUL and control bytes
    ("raw-nul-in-string", "s.jsonl", b'{"instruction": "a\x00b"}\n', "auto", ["line 1", "control character"]),
    ("raw-control-in-string", "s.jsonl", jsonl(GOOD) + b'{"instruction": "a\x01b"}\n', "auto",
     ["line 2", "control character"]),
    ("nul-in-csv-field", "s.csv", b"instruction,output\nfine,ok\na\x00b,c\n", "auto", ["line 3", "NUL character"]),
    ("nul-in-metadata-key", "s.jsonl", jsonl({"instruction": "ok", "x\u0000y": 1}), "auto",
     ["line 1", "NUL character"]),
    ("nul-in-sharegpt-turn", "s.jsonl",
     jsonl({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "a\u0000"}]}),
     "auto", ["line 1", "NUL character"]),
    ("nul-in-parquet", "s.parquet", parquet([{"instruction": "ok", "output": "a\x00b"}]), "auto",
     ["row 1", "NUL character"]),
    ("nan-literal", "s.jsonl", b'{"instruction": "x", "score": NaN}\n', "auto", ["line 1", "invalid JSON"]),
    ("integer-beyond-64-bits", "s.json", b'[{"instruction": "x", "score": 1' + b"0" * 40 + b"}]", "auto",
     ["record 1", "invalid JSON"]),
    ("cr-only-line-ends", "s.jsonl", json.dumps(GOOD).encode() + b"\r" + json.dumps(GOOD).encode() + b"\r", "auto",
     ["line 1", "invalid JSON"]),
    # huge fields, huge line counts
    ("10mb-output-jsonl", "s.jsonl", later(lambda: jsonl(GOOD, {"instruction": "x", "output": "y" * 10 * MB})), "auto",
     ["line 2", "over the 1,048,576-byte limit"], "heavy"),
    ("10mb-first-line", "s.jsonl", later(lambda: jsonl({"instruction": "x" * (10 * MB)})), "auto",
     ["line 1", "over the 1,048,576-byte limit"], "heavy"),
    ("10mb-line-no-newline", "s.jsonl", later(lambda: b'{"instruction": "' + b"x" * (10 * MB)), "auto",
     ["line 1", "over the 1,048,576-byte limit"], "heavy"),
    ("10mb-parquet-field", "s.parquet", parquet(lambda: [{"instruction": "x", "output": "y" * (10 * MB)}]), "auto",
     ["row 1", "over the 1,048,576-byte limit"], "heavy"),
    ("2m-blank-lines-only", "s.jsonl", later(lambda: blank_lines_then(2_000_000)), "auto", ["the file is empty"],
     "heavy"),
    ("300k-blank-csv-rows", "s.csv", later(lambda: b"instruction,output\n" + b" , \n" * 300_000), "auto",
     ["no records found"], "heavy"),
    ("2m-blank-lines-then-bad", "s.jsonl", later(lambda: blank_lines_then(2_000_000, b"{oops}\n")), "auto",
     ["line 2000001", "invalid JSON"], "heavy"),
    ("2m-blank-lines-then-array", "s.json", later(lambda: blank_lines_then(2_000_000, b'[{"instruction": 5}]')), "auto",
     ["record 1", "must be a string"], "heavy"),
    # names and licences given with the file
    ("dataset-name-too-long", "s.jsonl", jsonl(GOOD), "auto", ["Dataset name", "at most 200 characters"]),
]
# fmt: on
NAME_OVERRIDES = {"dataset-name-too-long": "n" * 300}
LIGHT = [case for case in REFUSED if len(case) == 5]


def _write(tmp_path, name, content):
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    return path


@pytest.fixture
def target(tmp_path):
    """The files are imported into a dataset that already holds rows, which must stay as they were."""
    path = tmp_path / "good.jsonl"
    path.write_bytes(jsonl(GOOD, {"instruction": "Another task."}))
    dataset_import_file(path=path, dataset_name="target")
    return Dataset.objects.get(name="target")


def _expect(message: str, fragments: list[str]) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_the_corpus_is_large_and_its_ids_unique():
    assert len(REFUSED) >= 60
    assert len({case[0] for case in REFUSED}) == len(REFUSED)


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_malformed_file_is_refused_by_the_service_saying_where(tmp_path, target, case):
    case_id, name, content, fmt, fragments = case[:5]
    path = _write(tmp_path, name, content)
    before = db_fingerprint()
    with pytest.raises(ImportFailed) as failure:
        dataset_import_file(path=path, dataset_name=NAME_OVERRIDES.get(case_id, "target"), fmt=fmt)
    _expect(str(failure.value), fragments)
    assert changed_tables(before, db_fingerprint()) == []


@pytest.mark.parametrize("case", LIGHT, ids=[c[0] for c in LIGHT])
def test_a_malformed_file_is_refused_by_the_command_and_recorded_as_a_failed_job(tmp_path, target, case):
    case_id, name, content, fmt, fragments = case
    path = _write(tmp_path, name, content)
    before = db_fingerprint(ignore=[ImportJob])
    jobs = set(ImportJob.objects.values_list("pk", flat=True))
    dataset = NAME_OVERRIDES.get(case_id, "target")
    with pytest.raises(CommandError) as failure:
        call_command("import_dataset", str(path), "--name", dataset, "--format", fmt)
    _expect(str(failure.value), fragments)
    assert changed_tables(before, db_fingerprint(ignore=[ImportJob])) == []
    job = ImportJob.objects.exclude(pk__in=jobs).get()
    assert job.status == ImportJob.Status.FAILED and job.imported == 0
    _expect(job.message, fragments)


UPLOADED = LIGHT[::3]  # a third of the corpus again through the upload API: the same reader, another door


def user_without_password(role: Role):
    """A user holding `role`, made without hashing a password (a third of a second each on this machine)."""
    user = get_user_model().objects.create(username=f"{role.group_name}-{get_user_model().objects.count()}")
    user_grant_role(username=user.username, role=role)
    return user


@pytest.fixture
def operator_api():
    user = user_without_password(Role.OPERATOR)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@pytest.mark.parametrize("case", UPLOADED, ids=[c[0] for c in UPLOADED])
def test_a_malformed_upload_fails_its_job_with_the_message_and_changes_nothing(
    tmp_path, target, operator_api, settings, case
):
    settings.MEDIA_ROOT = tmp_path / "media"
    case_id, name, content, fmt, fragments = case
    path = _write(tmp_path, name, content)
    before = db_fingerprint(ignore=[ImportJob])
    upload = SimpleUploadedFile(name, path.read_bytes(), content_type="application/octet-stream")
    data = {"file": upload, "dataset": NAME_OVERRIDES.get(case_id, "target"), "format": fmt}
    response = operator_api.post("/api/v1/imports/new/", data, format="multipart")
    if response.status_code == 400:  # refused before a job was made (a name the serializer checks)
        assert "dataset" in response.json(), response.json()
        return
    assert response.status_code == 202, response.content[:300]
    job = import_job_run(job_id=response.json()["id"])
    assert job.status == ImportJob.Status.FAILED
    _expect(job.message, fragments)
    followed = operator_api.get(f"/api/v1/imports/{job.pk}/").json()
    assert followed["status"] == "failed" and followed["imported"] == 0
    assert changed_tables(before, db_fingerprint(ignore=[ImportJob])) == []


BY_PAGE = LIGHT[1::6]  # and a sixth through the upload page, whose job page must show the message


@pytest.mark.parametrize("case", BY_PAGE, ids=[c[0] for c in BY_PAGE])
def test_a_malformed_file_uploaded_on_the_page_shows_why_on_its_job_page(tmp_path, target, client, settings, case):
    settings.MEDIA_ROOT = tmp_path / "media"
    case_id, name, content, fmt, fragments = case
    path = _write(tmp_path, name, content)
    client.force_login(user_without_password(Role.OPERATOR))
    before = db_fingerprint(ignore=[ImportJob])
    upload = SimpleUploadedFile(name, path.read_bytes(), content_type="application/octet-stream")
    form = {"file": upload, "dataset_name": NAME_OVERRIDES.get(case_id, "target"), "format": fmt}
    response = client.post("/datasets/import/", form)
    if response.status_code == 200:  # the form itself refused it (a name over 200 characters)
        assert "at most 200 characters" in html.unescape(response.content.decode())
        return
    assert response.status_code == 302, response.content[:300]
    job = import_job_run(job_id=ImportJob.objects.latest("pk").pk)
    page = html.unescape(client.get(response["Location"]).content.decode())
    assert job.status == ImportJob.Status.FAILED
    _expect(page, fragments)
    assert changed_tables(before, db_fingerprint(ignore=[ImportJob])) == []


# --- valid text, however hostile, is stored as written ---------------------------------------------------
SQL = "Robert'); DROP TABLE datasets_instruction; -- \" OR 1=1; /* */ UNION SELECT password FROM auth_user"
TEMPLATE = "{{ settings.SECRET_KEY }} {% debug %} {% load static %}{% static 'x' %} {{ request.user.password }}"
CONTROL = "bell\x07 escape\x1b[31m red\x1b[0m del\x7f tab\t cr\r vertical\x0b feed\x0c"
UNICODE = "line\u2028separator, \u202eright-to-left override, zero\u200bwidth, emoji \U0001f9ea, e\u0301"
HTML = "<script>alert(1)</script><img src=x onerror=alert(2)>"

# (id, file name, content, the (instruction, output, category) rows stored, in file order)
# fmt: off
VERBATIM = [
    ("sql-in-jsonl", "s.jsonl", jsonl({"instruction": SQL, "output": SQL}), [(SQL, SQL, "")]),
    ("sql-in-csv", "s.csv", f'instruction,output,category\n"{SQL.replace(chr(34), 2 * chr(34))}",ok,x\n'.encode(),
     [(SQL, "ok", "x")]),
    ("template-in-jsonl", "s.jsonl", jsonl({"instruction": TEMPLATE, "output": TEMPLATE, "category": "{{ 7*7 }}"}),
     [(TEMPLATE, TEMPLATE, "{{ 7*7 }}")]),
    ("template-in-parquet", "s.parquet", parquet([{"instruction": TEMPLATE, "output": "{% debug %}"}]),
     [(TEMPLATE, "{% debug %}", "")]),
    ("html-in-json-array", "s.json", json.dumps([{"instruction": HTML, "output": HTML}]).encode(), [(HTML, HTML, "")]),
    ("control-characters", "s.jsonl", jsonl({"instruction": CONTROL, "output": "ok"}), [(CONTROL, "ok", "")]),
    ("unicode-oddities", "s.jsonl", jsonl({"instruction": UNICODE}), [(UNICODE, "", "")]),
    ("bom-json-array", "s.json", b"\xef\xbb\xbf" + json.dumps([GOOD]).encode(),
     [(GOOD["instruction"], GOOD["output"], "")]),
    ("bom-jsonl", "s.jsonl", b"\xef\xbb\xbf" + jsonl(GOOD), [(GOOD["instruction"], GOOD["output"], "")]),
    ("2m-blank-lines-then-a-record", "s.jsonl", later(lambda: blank_lines_then(2_000_000, jsonl(GOOD))),
     [(GOOD["instruction"], GOOD["output"], "")]),
    ("key-text-inside-a-value", "s.jsonl", jsonl({"instruction": 'say "a": 1, "a": 2', "output": '"x": "y"'}),
     [('say "a": 1, "a": 2', '"x": "y"', "")]),
    ("deep-but-allowed-metadata", "s.jsonl", deep(200, jsonl_line=True), [("Deep.", "", "")]),
    ("parquet-named-jsonl", "s.jsonl", parquet([GOOD]), [(GOOD["instruction"], GOOD["output"], "")]),
]
# fmt: on


@pytest.mark.parametrize(("case_id", "name", "content", "rows"), VERBATIM, ids=[c[0] for c in VERBATIM])
def test_hostile_but_valid_text_is_stored_verbatim(tmp_path, case_id, name, content, rows):
    path = _write(tmp_path, name, content)
    report = dataset_import_file(path=path, dataset_name=f"verbatim {case_id}")
    assert report.imported == len(rows)
    stored = list(
        Instruction.objects.filter(dataset__name=f"verbatim {case_id}")
        .order_by("pk")
        .values_list("text", "reference_output", "task_category")
    )
    assert stored == rows


def test_sql_and_template_text_comes_back_as_written_and_is_shown_escaped_not_run(tmp_path, client, operator_api):
    path = _write(tmp_path, "hostile.jsonl", jsonl({"instruction": TEMPLATE, "output": SQL, "category": HTML[:60]}))
    call_command("import_dataset", str(path), "--name", TEMPLATE[:40])
    dataset = Dataset.objects.get(name=TEMPLATE[:40])
    row = Instruction.objects.get(dataset=dataset)
    assert Instruction.objects.count() == 1  # the DROP TABLE text dropped nothing

    api = operator_api.get(f"/api/v1/instructions/{row.pk}/").json()
    assert (api["text"], api["reference_output"]) == (TEMPLATE, SQL)

    client.force_login(user_without_password(Role.VIEWER))
    for url in (f"/datasets/{dataset.pk}/", f"/datasets/{dataset.pk}/instructions/{row.pk}/"):
        page = client.get(url).content.decode()
        assert settings.SECRET_KEY not in page
        assert "{{ settings.SECRET_KEY }}" in page  # shown as text, not rendered
        assert "<script>alert(1)" not in page
    detail = client.get(f"/datasets/{dataset.pk}/instructions/{row.pk}/").content.decode()
    assert "{% debug %}" in detail and "Robert&#x27;); DROP TABLE" in detail
