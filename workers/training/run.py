"""`python -m workers.training.run --spec job.json`: train, resume, or stop cleanly.

Exit codes: 0 succeeded, 2 bad spec or data (the message names the field), 3 cancelled by SIGTERM (a
checkpoint was saved first), 1 anything else. result.json is written in every case with `status`
succeeded | bad_spec | cancelled | failed; metrics.jsonl gets one line per logged step. Several GPUs:
`accelerate launch -m workers.training.run --spec job.json` (or torchrun); rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from workers.training.spec import SpecError, TrainSpec, load_spec

EXIT_OK, EXIT_CRASH, EXIT_BAD_SPEC, EXIT_CANCELLED = 0, 1, 2, 3


def write_result(output_dir: str | Path, result: dict) -> None:
    if int(os.environ.get("RANK", "0")) != 0:
        return
    path = Path(output_dir) / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    work = path.with_suffix(".json.tmp")
    work.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(work, path)


def check_paths(spec: TrainSpec) -> None:
    problems = []
    for field in ("data_path", "eval_data_path"):
        value = getattr(spec, field)
        if value and not Path(value).is_file():
            problems.append((field, f"no file at {value}"))
    if spec.resume_from and not Path(spec.resume_from, "state.json").is_file():
        problems.append(("resume_from", f"{spec.resume_from} is not a checkpoint folder (no state.json)"))
    base = spec.base_model
    if not base.startswith("builtin:") and (base.startswith((".", "/")) and not Path(base).is_dir()):
        problems.append(("base_model", f"no model folder at {base}"))
    if problems:
        raise SpecError(problems)


def main(argv: list[str] | None = None) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # first, so no SIGTERM is lost while torch loads
    parser = argparse.ArgumentParser(prog="python -m workers.training.run", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="the job's TrainSpec as JSON")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        check_paths(spec)
    except SpecError as error:
        print(f"bad spec {args.spec}:\n{error}", file=sys.stderr)
        return EXIT_BAD_SPEC

    from transformers.utils import logging as hf_logging

    from workers.training.students import StudentError
    from workers.training.trainer import TrainingCancelled, train

    hf_logging.disable_progress_bar()
    base = {"base_model": spec.base_model, "finetune": spec.finetune, "job_id": spec.job_id}
    try:
        result = train(spec, stop=stop, log=lambda line: print(line, file=sys.stderr, flush=True))
    except (SpecError, StudentError) as error:
        print(f"bad spec {args.spec}:\n{error}", file=sys.stderr)
        write_result(spec.output_dir, {**base, "status": "bad_spec", "error": str(error)})
        return EXIT_BAD_SPEC
    except TrainingCancelled as cancelled:
        print(f"cancelled: checkpoint saved at step {cancelled.step}", file=sys.stderr)
        write_result(spec.output_dir, {**base, "status": "cancelled", "steps": cancelled.step})
        return EXIT_CANCELLED
    except Exception as error:  # noqa: BLE001 - the exit code and result.json are the contract; the traceback goes to the log
        traceback.print_exc()
        write_result(spec.output_dir, {**base, "status": "failed", "error": f"{type(error).__name__}: {error}"})
        return EXIT_CRASH
    write_result(spec.output_dir, {**base, **result})
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
