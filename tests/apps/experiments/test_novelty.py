"""The generate stage's kept filter decides across batches exactly as one novelty_filter call over all
candidates does, with the same nearest items and scores."""

import random

import pytest

from apps.experiments.novelty import KeptNovelty
from workers.algorithms.novelty import NoveltyConfig, novelty_filter

WORDS = [
    "the",
    "a",
    "of",
    "write",
    "explain",
    "list",
    "give",
    "short",
    "poem",
    "story",
    "code",
    "python",
    "water",
    "cycle",
    "tree",
    "bread",
    "cat",
    "dog",
]


def _texts(rng: random.Random, n: int, base: list[str]) -> list[str]:
    out = []
    for _ in range(n):
        if base and rng.random() < 0.5:  # a near copy of an earlier text
            words = rng.choice(base + out if out else base).split()
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            out.append(" ".join(words))
        else:
            out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))))
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("batch", [1, 7, 50])
def test_batches_decide_as_one_call(seed, batch):
    rng = random.Random(seed)
    pool = _texts(rng, 120, [])
    candidates = _texts(rng, 90, pool)
    expected = novelty_filter(candidates, pool, NoveltyConfig(threshold=0.7, nearest_floor=0.5))
    kept = KeptNovelty(pool, candidates, threshold=0.7, floor=0.5)
    got = []
    for start in range(0, len(candidates), batch):
        positions = list(range(start, min(start + batch, len(candidates))))
        decisions = kept.decide(positions)
        kept.add([p for p, d in zip(positions, decisions, strict=True) if d.kept])
        got += decisions
    assert [d.kept for d in got] == [d.kept for d in expected]
    assert sum(d.kept for d in got) not in (0, len(candidates))  # the sample exercises both outcomes
    for mine, theirs in zip(got, expected, strict=True):
        if theirs.nearest is None:
            assert mine.nearest_source is None
        else:
            assert (mine.nearest_source, mine.nearest_index) == (theirs.nearest.source, theirs.nearest.index)
            assert mine.score == pytest.approx(theirs.nearest.score, abs=1e-12)
