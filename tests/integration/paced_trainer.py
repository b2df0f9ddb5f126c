"""The stand-in trainer (tests.apps.training.fake_trainer) with a pause per step taken from
FAKE_TRAINER_SLEEP_S, so that a test can kill the gpu worker while the trainer subprocess runs (an
experiment config has no room for the stand-in's own switches)."""

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
    spec.setdefault("fake", {}).setdefault("sleep_s", float(os.environ.get("FAKE_TRAINER_SLEEP_S", "0")))
    return fake_trainer._train(spec)


if __name__ == "__main__":
    sys.exit(main())
