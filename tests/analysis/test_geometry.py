"""The five latent-space measures and the latent flip rate on points with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from alfia.analysis.geometry import HIGHER_IS_BETTER, MEASURES, LatentProbe, latent_flip_rate, separation_measures
from alfia.errors import AlfiaError


def test_the_measures_of_two_pairs_on_a_line():
    # survivors at 0 and 2 (centroid 1), deaths at 10 and 12 (centroid 11)
    points = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [12.0, 0.0]])
    m = separation_measures(points, [0, 0, 1, 1])
    assert m["centroid_distance"] == pytest.approx(10.0)
    assert m["intra_survivor_distance"] == pytest.approx(1.0)  # each survivor lies 1 from its centroid
    assert m["intra_death_distance"] == pytest.approx(1.0)
    # nearest stay of the other outcome: 0 -> 10 (10), 2 -> 10 (8), 10 -> 2 (8), 12 -> 2 (10)
    assert m["mean_min_neighbour_distance"] == pytest.approx(9.0)
    assert m["separation"] == pytest.approx(10.0)  # 10 / mean(1, 1)


def test_the_measures_in_three_dimensions_and_unequal_groups():
    survivors = np.array([[0, 0, 0], [0, 0, 2], [0, 2, 0], [0, 2, 2]], dtype=float)  # centroid (0, 1, 1)
    deaths = np.array([[3, 1, 1]], dtype=float)
    m = separation_measures(np.vstack([survivors, deaths]), [0, 0, 0, 0, 1])
    assert m["centroid_distance"] == pytest.approx(3.0)
    assert m["intra_survivor_distance"] == pytest.approx(np.sqrt(2))
    assert m["intra_death_distance"] == pytest.approx(0.0)
    assert m["mean_min_neighbour_distance"] == pytest.approx(np.sqrt(11))  # every pair is sqrt(9 + 1 + 1) apart
    assert m["separation"] == pytest.approx(3.0 / (np.sqrt(2) / 2))


def test_the_measures_say_which_way_is_better_and_scale_as_they_should():
    assert set(HIGHER_IS_BETTER) == set(MEASURES)
    assert [m for m, hib in HIGHER_IS_BETTER.items() if not hib] == ["intra_survivor_distance", "intra_death_distance"]
    rng = np.random.default_rng(0)
    points, y = rng.normal(size=(300, 2)), rng.integers(0, 2, 300)
    points[y == 1] += 3.0
    near, far = separation_measures(points, y), separation_measures(points * 10, y)
    for m in ("centroid_distance", "mean_min_neighbour_distance", "intra_survivor_distance", "intra_death_distance"):
        assert far[m] == pytest.approx(10 * near[m])
    assert far["separation"] == pytest.approx(near["separation"])  # scale-free
    apart = points.copy()
    apart[y == 1] += 5.0  # the groups move apart, each as compact as before
    moved = separation_measures(apart, y)
    assert moved["centroid_distance"] > near["centroid_distance"] and moved["separation"] > near["separation"]
    assert moved["intra_death_distance"] == pytest.approx(near["intra_death_distance"])


def test_the_measures_need_both_outcomes():
    with pytest.raises(AlfiaError, match="both survivors and deaths"):
        separation_measures(np.zeros((3, 2)), [0, 0, 0])


def test_the_latent_flip_rate_counts_the_stays_that_cross_the_boundary():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 100)
    embeddings = rng.normal(size=(200, 8)) * 0.3
    embeddings[:, 0] += np.where(y == 1, 2.0, -2.0)  # the outcome lies along the first axis
    probe = LatentProbe(embeddings, y, components=2)
    assert latent_flip_rate(probe, embeddings, embeddings) == 0.0
    moved = embeddings.copy()
    moved[:20, 0] += 4.0  # 20 survivors pushed deep onto the deaths' side
    moved[100:110, 1] += 0.01  # a nudge along another axis crosses nothing
    assert latent_flip_rate(probe, embeddings, moved) == pytest.approx(20 / 200)
    assert probe.decide(moved[:20]).all() and not probe.decide(embeddings[:20]).any()
