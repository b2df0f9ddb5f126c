import math

import numpy as np
import pytest

from workers.algorithms.config import ConfigError
from workers.algorithms.mos import (
    MixtureOfSkills,
    MoSConfig,
    ScorerMLP,
    cossim_rewards,
    cossim_target_rewards,
    diff_rewards,
    ema,
    mean_pool,
    mospec_diff_rewards,
    temperature_probabilities,
)


def test_temperature_sampling_hand_values():
    sizes = [100, 300, 600]
    assert temperature_probabilities(sizes, 1) == pytest.approx([0.1, 0.3, 0.6])
    assert temperature_probabilities(sizes, math.inf) == pytest.approx([1 / 3] * 3)
    weights = np.array([0.1, 0.3, 0.6]) ** 0.1
    assert temperature_probabilities(sizes, 10) == pytest.approx(weights / weights.sum())
    assert temperature_probabilities([0, 5, 5], math.inf) == pytest.approx([0, 0.5, 0.5])
    with pytest.raises(ValueError):
        temperature_probabilities([0, 0], 1)


def test_scorer_starts_uniform():
    assert ScorerMLP(5).probabilities() == pytest.approx([0.2] * 5, abs=1e-15)
    assert MixtureOfSkills(4).probabilities() == pytest.approx([0.25] * 4, abs=1e-15)


def test_hand_backprop_matches_finite_differences():
    rng = np.random.default_rng(0)
    scorer = ScorerMLP(4, hidden=6, seed=1)
    scorer.w2 = rng.normal(size=6)  # away from the uniform start, so every gradient is non-zero
    scorer.b1 = rng.normal(size=6)
    rewards = np.array([0.3, -0.2, 0.9, 0.1])
    analytic = scorer.gradient(rewards)
    for name in ("w1", "b1", "w2", "b2"):
        param = getattr(scorer, name)
        numeric = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            saved = param[idx]
            param[idx] = saved + 1e-6
            up = scorer.objective(rewards)
            param[idx] = saved - 1e-6
            down = scorer.objective(rewards)
            param[idx] = saved
            numeric[idx] = (up - down) / 2e-6
        assert analytic[name] == pytest.approx(numeric, abs=1e-7), name
    assert np.abs(analytic["w1"]).sum() > 0


def test_reinforce_step_is_gradient_ascent_with_gamma():
    scorer = ScorerMLP(3, hidden=4, seed=2)
    scorer.w2 = np.array([0.5, -0.2, 0.1, 0.3])
    rewards = np.array([1.0, 0.0, 0.5])
    before = {name: getattr(scorer, name).copy() for name in ("w1", "b1", "w2", "b2")}
    grad = scorer.gradient(rewards)
    scorer.reinforce(rewards, 1e-4)
    for name, value in before.items():
        assert getattr(scorer, name) == pytest.approx(value + 1e-4 * grad[name])


def test_rewarded_dataset_gains_probability():
    mos = MixtureOfSkills(3, MoSConfig(learning_rate=0.5))
    for _ in range(50):
        mos.update(np.array([1.0, 0.0, 0.0]))
    p = mos.probabilities()
    assert p[0] > 0.5 and p[0] > p[1] and p[0] > p[2]
    assert p.sum() == pytest.approx(1.0)


def test_cossim_rewards_hand_values():
    z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    c = 1 / math.sqrt(2)
    assert cossim_rewards(z) == pytest.approx([(1 + 0 + c) / 3, (0 + 1 + c) / 3, (c + c + 1) / 3])
    assert cossim_target_rewards(z, 2) == pytest.approx([c, c, 1.0])
    assert cossim_rewards(np.array([[0.0, 0.0], [1.0, 0.0]])) == pytest.approx([0.0, 0.5])


def test_mean_pool_ignores_padding():
    hidden = np.array([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]], [[0.0, 2.0], [0.0, 2.0], [0.0, 2.0]]])
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    # Example means: (2, 2) and (0, 2); batch mean (1, 2).
    assert mean_pool(hidden, mask) == pytest.approx([1.0, 2.0])


def test_diff_rewards_and_mospec_doubling():
    rewards = diff_rewards([[2.0, 4.0], [3.0]], [[4.0, 4.0], [1.0]])
    assert rewards == pytest.approx([0.75, 3.0])
    assert mospec_diff_rewards(rewards, 0) == pytest.approx([1.5, 3.0])
    with pytest.raises(ValueError):
        diff_rewards([[1.0]], [[0.0]])


def test_ema_uses_the_previous_smoothed_value():
    first = ema(np.array([1.0, 0.0]), None)
    assert first == pytest.approx([1.0, 0.0])
    second = ema(np.array([0.0, 1.0]), first)
    assert second == pytest.approx([0.1, 0.9])
    third = ema(np.array([0.0, 1.0]), second)
    assert third == pytest.approx([0.01, 0.99])


def test_smoothed_update_feeds_the_ema_to_the_scorer():
    mos = MixtureOfSkills(2, MoSConfig(smooth=True, learning_rate=1.0))
    mos.update(np.array([1.0, 0.0]))
    mos.update(np.array([0.0, 1.0]))
    assert mos.smoothed == pytest.approx([0.1, 0.9])
    assert mos.updates == 2


def test_reward_kinds_and_mospec_target():
    z = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert MixtureOfSkills(2).rewards(embeddings=z) == pytest.approx([0.5, 0.5])
    assert MixtureOfSkills(2, MoSConfig(target=1)).rewards(embeddings=z) == pytest.approx([0.0, 1.0])
    diff = MixtureOfSkills(2, MoSConfig(reward="diff", target=1))
    assert diff.rewards(ppl_current=[[2.0], [2.0]], ppl_base=[[4.0], [4.0]]) == pytest.approx([0.5, 1.0])
    with pytest.raises(ConfigError, match="target 5"):
        MixtureOfSkills(2, MoSConfig(target=5))


def test_update_schedule_and_sampling():
    mos = MixtureOfSkills(3)
    assert [s for s in range(1, 301) if mos.should_update(s)] == [100, 200, 300]
    draws = mos.sample(np.random.default_rng(0), 3000)
    assert set(np.unique(draws)) == {0, 1, 2}


def test_scorer_state_round_trips():
    mos = MixtureOfSkills(3, MoSConfig(learning_rate=0.1))
    mos.update(np.array([0.2, 0.5, 0.1]))
    restored = ScorerMLP.from_state(mos.scorer.state())
    assert restored.probabilities() == pytest.approx(mos.probabilities(), abs=0)


def test_config_rejects_unknown_and_bad_values():
    assert MoSConfig.from_dict({"reward": "diff", "smooth": True}).smooth
    with pytest.raises(ConfigError, match="unknown key"):
        MoSConfig.from_dict({"gamma": 1e-4})
    with pytest.raises(ConfigError, match="reward must be"):
        MoSConfig.from_dict({"reward": "ppl"})
