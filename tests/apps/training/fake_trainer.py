"""A stand-in for workers.training.run and .generate that keeps their file and exit-code contract without
torch: `python -m tests.apps.training.fake_trainer --spec spec.json`.

Training (spec without prompts_path): one metrics.jsonl line per step, a checkpoint (checkpoints/last.json)
after every step and resume from it, final/ with a fake safetensors file, result.json; exit 0. SIGTERM:
checkpoint, exit 3. The spec's `fake` object steers it: sleep_s a step, crash_at (exit 1 at that step, on
the first start only unless crash_always), ignore_term (SIGTERM does nothing: the caller must SIGKILL),
wrong_sha (report a wrong sha256 for a file), hold_at + hold_file (before that step, wait until the file
exists: a test decides when the run may go on, whatever the machine's load). Every start appends
"pid start_step" to starts.log.
Generation (spec with prompts_path): answers "echo: <prompt>"; FAKE_GENERATOR_FAIL=1 in the environment
exits 1, FAKE_GENERATOR_SLEEP_S sleeps first (the generator's spec has no room for test switches).
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path


def _train(spec: dict) -> int:
    fake = spec.get("fake", {})
    out = Path(spec["output_dir"])
    if not Path(spec.get("data_path", "")).is_file():
        print(f"bad spec: data_path: no file at {spec.get('data_path')}", file=sys.stderr)
        return 2
    stop = []
    signal.signal(signal.SIGTERM, signal.SIG_IGN if fake.get("ignore_term") else (lambda *_: stop.append(1)))
    last = out / "checkpoints" / "last.json"
    start = json.loads(last.read_text())["step"] if last.is_file() else 0
    first_start = not (out / "starts.log").exists()
    with open(out / "starts.log", "a") as starts:
        starts.write(f"{os.getpid()} {start}\n")
    print(f"fake trainer: starting at step {start}", flush=True)
    total = int(spec.get("max_steps") or 5)
    with open(out / "metrics.jsonl", "a") as metrics:
        for step in range(start + 1, total + 1):
            if stop:
                print(f"cancelled at step {step - 1}", file=sys.stderr, flush=True)
                (out / "result.json").write_text(json.dumps({"status": "cancelled", "steps": step - 1}))
                return 3
            time.sleep(float(fake.get("sleep_s", 0.0)))
            while step == fake.get("hold_at") and not Path(fake["hold_file"]).exists() and not stop:
                time.sleep(0.05)
            if step == fake.get("crash_at") and (first_start or fake.get("crash_always")):
                print("Traceback: fake crash", file=sys.stderr, flush=True)
                (out / "result.json").write_text(json.dumps({"status": "failed", "error": "RuntimeError: fake crash"}))
                return 1
            line = {"step": step, "epoch": step / total, "loss": 1.0 / step, "lr": 0.001, "tokens_per_s": 100.0}
            line["mos_p"] = [0.25, 0.75]
            line["mos_dataset"] = ["a"]
            metrics.write(json.dumps(line) + "\n")
            metrics.flush()
            last.parent.mkdir(parents=True, exist_ok=True)
            last.write_text(json.dumps({"step": step}))
    final = out / "final"
    final.mkdir(exist_ok=True)
    (final / "adapter_model.safetensors").write_bytes(b"\x00weights" * 1000)
    (final / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": spec["base_model"]}))
    files = []
    for path in sorted(final.iterdir()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        files.append(
            {
                "path": f"final/{path.name}",
                "sha256": "0" * 64 if fake.get("wrong_sha") else digest,
                "bytes": path.stat().st_size,
            }
        )
    result = {"status": "succeeded", "final_dir": str(final), "files": files, "steps": total, "train_loss": 0.5}
    result.update({"base_model": spec["base_model"], "finetune": spec.get("finetune", "lora")})
    (out / "result.json").write_text(json.dumps(result))
    return 0


def _generate(spec: dict) -> int:
    if os.environ.get("FAKE_GENERATOR_FAIL"):
        print("Traceback: fake generation failure", file=sys.stderr)
        return 1
    time.sleep(float(os.environ.get("FAKE_GENERATOR_SLEEP_S", "0")))
    rows = [json.loads(line) for line in Path(spec["prompts_path"]).read_text().splitlines() if line.strip()]
    with open(spec["output_path"], "w") as out:
        for row in rows:
            text = f"echo: {row['prompt']}" + (
                f" [{Path(spec['adapter_dir']).name}]" if spec.get("adapter_dir") else ""
            )
            out.write(json.dumps({"id": row["id"], "text": text, "tokens": len(text.split())}) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    spec = json.loads(Path(parser.parse_args().spec).read_text())
    return _generate(spec) if "prompts_path" in spec else _train(spec)


if __name__ == "__main__":
    sys.exit(main())
