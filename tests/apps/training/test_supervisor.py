"""Reading metrics.jsonl by byte offset, and the lock that keeps one run per job folder on a machine."""

import json
import subprocess
import sys

from apps.training.supervisor import MetricsTail, log_tail, output_lock


def _line(step, **values):
    return (json.dumps({"step": step, **values}) + "\n").encode()


def test_the_tail_reads_whole_lines_only_and_resumes_from_its_offset(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(_line(1, loss=2.0) + b'{"step": 2, "lo')
    tail = MetricsTail(path)
    rows, offset = tail.read()
    assert rows == [(1, "loss", 2.0)] and offset == len(_line(1, loss=2.0))
    assert tail.offset == 0  # nothing moves until the rows are stored
    tail.advance(offset)
    with open(path, "ab") as handle:
        handle.write(b'ss": 1.5}\n')
    assert tail.read() == ([(2, "loss", 1.5)], path.stat().st_size)
    # A later reader (another worker) starts from the stored offset and sees only what is new.
    assert MetricsTail(path, offset=path.stat().st_size).read() == ([], path.stat().st_size)


def test_the_tail_keeps_numbers_expands_lists_and_skips_the_rest(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(
        _line(3, loss=1.0, flag=True, name="x", eta_s=None, mos_p=[0.2, 0.8], nan=float("nan")) + b"not json\n"
    )
    rows, _ = MetricsTail(path).read()
    assert sorted(rows) == [(3, "loss", 1.0), (3, "mos_p.0", 0.2), (3, "mos_p.1", 0.8)]


def test_a_file_rewritten_shorter_is_read_again_from_the_start(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(_line(1, loss=1.0))
    rows, _ = MetricsTail(path, offset=10_000).read()
    assert rows == [(1, "loss", 1.0)]


def test_a_half_line_left_by_a_killed_trainer_does_not_swallow_the_next_runs_first_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(_line(1, loss=1.0) + b'{"step": 2, "lo')
    tail = MetricsTail(path)
    tail.end_partial_line()
    tail.end_partial_line()  # idempotent: a finished line is left alone
    with open(path, "ab") as handle:
        handle.write(_line(2, loss=0.5))
    assert tail.read()[0] == [(1, "loss", 1.0), (2, "loss", 0.5)]
    assert path.read_bytes().count(b"\n") == 3


def test_log_tail_reads_only_the_end_from_a_line_start(tmp_path):
    path = tmp_path / "train.log"
    path.write_text("".join(f"line {i}\n" for i in range(10_000)))
    tail = log_tail(path, 100)
    assert tail.endswith("line 9999\n") and tail.startswith("line ") and len(tail) <= 100
    assert log_tail(tmp_path / "missing.log") == ""


def test_the_folder_lock_is_exclusive_and_held_by_a_child_that_inherits_it(tmp_path):
    with output_lock(tmp_path) as fd:
        assert fd is not None
        with output_lock(tmp_path) as second:
            assert second is None
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], pass_fds=(fd,))
    try:
        with output_lock(tmp_path) as while_child_lives:
            assert while_child_lives is None  # the worker is gone, its trainer is not: still locked
    finally:
        child.kill()
        child.wait()
    with output_lock(tmp_path) as after:
        assert after is not None
