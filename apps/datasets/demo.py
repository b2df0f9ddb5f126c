"""The demo datasets that `make run` imports on a fresh installation (files in demo_data/, licences in
demo_data/NOTICE.md). The demo experiments in configs/demo/ name them."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.datasets.importing import ImportReport, dataset_import_file
from apps.datasets.models import Dataset, ImportJob

DEMO_DIR = settings.BASE_DIR / "demo_data"
SELF_INSTRUCT = "Self-Instruct (Wang et al., ACL 2023), github.com/yizhongw/self-instruct"
MT_BENCH = "MT-Bench (Zheng et al., NeurIPS 2023), github.com/lm-sys/FastChat"
ALPACA_GPT4 = "Alpaca-GPT-4 (Peng et al., 2023) via github.com/hiyouga/LLaMA-Factory data/alpaca_en_demo.json"
STEP_BY_STEP = "github.com/google-research/distilling-step-by-step (Hsieh et al., ACL 2023 Findings)"
SVAMP = f"SVAMP (Patel et al., NAACL 2021) with PaLM 540B rationales from {STEP_BY_STEP}"
CQA = f"CommonsenseQA / CoS-E (Talmor et al. 2019; Rajani et al. 2019) with PaLM 540B rationales from {STEP_BY_STEP}"


@dataclass(frozen=True)
class DemoDataset:
    name: str
    filename: str
    description: str
    source: str = SELF_INSTRUCT
    license: str = "Apache-2.0"


DEMO_DATASETS = (
    DemoDataset(
        "demo-self-instruct-seeds",
        "self-instruct_seed_tasks.jsonl",
        "175 human-written seed tasks with an example input and output each.",
    ),
    DemoDataset(
        "demo-user-oriented-davinci003",
        "self-instruct_text-davinci-003_predictions.jsonl",
        "252 user-oriented instructions answered by text-davinci-003 (replayable teacher answers).",
    ),
    DemoDataset(
        "demo-mt-bench",
        "mt_bench_questions.jsonl",
        "MT-Bench's 80 questions (first turn) as an eval set: TAPIR task categories, MT-Bench's own category "
        "in metadata, GPT-4's reference answer for the 30 math, reasoning and coding questions.",
        MT_BENCH,
    ),
    DemoDataset(
        "demo-mt-bench-reference",
        "mt_bench_reference.jsonl",
        "The 30 MT-Bench questions with a GPT-4 reference answer (Math, Reasoning, Code Generation): the eval "
        "set of the offline Lion and TAPIR demos, whose teacher can answer them.",
        MT_BENCH,
    ),
    DemoDataset(
        "demo-alpaca-seeds",
        "alpaca_gpt4_seeds.jsonl",
        "40 Alpaca instructions with GPT-4's answers: the seed pool of the Lion and TAPIR demos.",
        ALPACA_GPT4,
        "CC BY-NC 4.0 (data)",
    ),
    DemoDataset(
        "demo-alpaca-reserve",
        "alpaca_gpt4_reserve.jsonl",
        "260 input-free Alpaca instructions: the reserve the offline retrieval generator draws new ones from.",
        ALPACA_GPT4,
        "CC BY-NC 4.0 (data)",
    ),
    DemoDataset(
        "demo-teacher-answers",
        "teacher_answers.jsonl",
        "GPT-4's answers to the demo seeds, the whole reserve and the 30 MT-Bench reference questions: the "
        "offline teacher (replay) and judge (similarity to these answers) of the Lion and TAPIR demos.",
        f"{ALPACA_GPT4}; {MT_BENCH}",
        "CC BY-NC 4.0 (Alpaca-GPT-4 records); Apache-2.0 (MT-Bench records)",
    ),
    DemoDataset(
        "demo-svamp-train",
        "svamp_train.jsonl",
        "200 SVAMP word problems with gold equations and PaLM's chain-of-thought rationale as the reference "
        "output (the offline step-by-step teacher replays it).",
        SVAMP,
        "MIT (SVAMP); Apache-2.0 (rationales)",
    ),
    DemoDataset(
        "demo-svamp-test",
        "svamp_test.jsonl",
        "50 held-out SVAMP word problems with gold equations (and PaLM's rationales) for accuracy.",
        SVAMP,
        "MIT (SVAMP); Apache-2.0 (rationales)",
    ),
    DemoDataset(
        "demo-cqa-train",
        "cqa_train.jsonl",
        "300 CommonsenseQA questions (choices in the text and in metadata) with gold answers and PaLM's "
        "rationales as the reference output.",
        CQA,
        "BSD-3-Clause (CoS-E); Apache-2.0 (rationales)",
    ),
    DemoDataset(
        "demo-cqa-test",
        "cqa_test.jsonl",
        "100 held-out CommonsenseQA questions with gold answers (and PaLM's rationales) for accuracy.",
        CQA,
        "BSD-3-Clause (CoS-E); Apache-2.0 (rationales)",
    ),
)


def demo_datasets_load() -> list[ImportReport]:
    """Import each demo dataset that does not exist yet; a second call does nothing. Each import is
    recorded as a finished ImportJob, so the home page's "Recent imports" shows it like any other."""
    reports = []
    for demo in DEMO_DATASETS:
        if Dataset.objects.filter(name=demo.name).exists():
            continue
        started = timezone.now()
        with transaction.atomic():
            report = dataset_import_file(path=DEMO_DIR / demo.filename, dataset_name=demo.name)
            Dataset.objects.filter(pk=report.dataset_id).update(
                description=demo.description, source=demo.source, license=demo.license
            )
            ImportJob.objects.create(
                dataset_name=demo.name,
                dataset_id=report.dataset_id,
                source_path=str(DEMO_DIR / demo.filename),
                original_filename=demo.filename,
                detected_format=report.format,
                status=ImportJob.Status.SUCCEEDED,
                records_read=report.records_read,
                imported=report.imported,
                duplicates=report.duplicates,
                message=report.summary(),
                attempts=1,
                started_at=started,
                finished_at=timezone.now(),
            )
        reports.append(report)
    return reports
