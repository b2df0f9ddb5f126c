"""The stand-in trainer (tests.apps.training.fake_trainer) with a pause per step taken from
FAKE_TRAINER_SLEEP_S, so that a test can kill the gpu worker while the trainer subprocess runs (an
experiment config has no room for the stand-in's own switches). With FAKE_TRAINER_HOLD_FILE set it also
waits before step FAKE_TRAINER_HOLD_AT (default 3) while that file is missing: a test holds a run mid-way
by removing the file and lets it go on by creating it again."""

import argparse
import json
import os
import sys
from pathlib import Path

from tests.apps.training import fake_trainer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    spec = json.loads(Path(parser.parse_args().spec).read_text())
    if "prompts_path" in spec:
        return fake_trainer._generate(spec)
    fake = spec.setdefault("fake", {})
    fake.setdefault("sleep_s", float(os.environ.get("FAKE_TRAINER_SLEEP_S", "0")))
    if os.environ.get("FAKE_TRAINER_HOLD_FILE"):
        fake.setdefault("hold_file", os.environ["FAKE_TRAINER_HOLD_FILE"])
        fake.setdefault("hold_at", int(os.environ.get("FAKE_TRAINER_HOLD_AT", "3")))
    return fake_trainer._train(spec)


if __name__ == "__main__":
    sys.exit(main())
