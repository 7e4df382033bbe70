"""How the stays lie in a latent space: the five measures of the paper's Fig. 6g-k and LAPD's flip rate.

The five measures (``separation_measures``) take points ``X`` (n, k) and outcomes ``y`` (0 = survived, 1 = died).
With S the survivors, D the deaths, c_S and c_D their centroids (means) and ||.|| the Euclidean distance:

- ``centroid_distance`` = ||c_S - c_D||. **Higher is better** (the groups' centres lie apart).
- ``mean_min_neighbour_distance``: for every point, the distance to the nearest point of the *other* group,
  averaged over all points. **Higher is better** (few stays sit right next to a stay of the other outcome).
- ``intra_survivor_distance`` = mean over s in S of ||s - c_S||. **Lower is better** (a compact group).
- ``intra_death_distance`` = mean over d in D of ||d - c_D||. **Lower is better**.
- ``separation`` = centroid_distance / ((intra_survivor_distance + intra_death_distance) / 2): the distance between
  the groups in units of their own spread (the paper's "classification degree ratio"). **Higher is better**; it
  is the one measure that does not depend on the scale of the space.

``alfia analyze`` computes them on the 2-D UMAP coordinates that its plots show, so every representation (the
tabular matrix, CLS/mean/max pooling, ALF) is measured in a space of the same dimension; the first four measures
are in UMAP's units.

The Latent Diagnosis Flip Rate (``latent_flip_rate``) is LAPD's (Vijayaraj 2025): the share of stays whose
embedding crosses the decision boundary in a PCA-reduced latent space when their input is perturbed. Our reading
of the definition: a PCA (``components``, 2 by default, the plane LAPD draws) is fitted on the *original*
embeddings of the evaluated stays, a logistic-regression probe (balanced class weights, so the rare deaths still
place the boundary) is fitted in that plane on the original embeddings and the stays' outcomes, and a stay flips
when the probe's decision for its perturbed embedding (projected with the same PCA) differs from the decision for
its original one. Neither the PCA nor the probe is refitted on perturbed embeddings.
"""

from __future__ import annotations

import numpy as np

from alfia.errors import AlfiaError

MEASURES = ("centroid_distance", "mean_min_neighbour_distance", "intra_survivor_distance", "intra_death_distance",
            "separation")
HIGHER_IS_BETTER = {"centroid_distance": True, "mean_min_neighbour_distance": True, "intra_survivor_distance": False,
                    "intra_death_distance": False, "separation": True}
MEASURE_LABELS = {"centroid_distance": "Centroid distance (HIB)",
                  "mean_min_neighbour_distance": "Mean minimum-neighbour distance (HIB)",
                  "intra_survivor_distance": "Intra-group distance, survivors (LIB)",
                  "intra_death_distance": "Intra-group distance, deaths (LIB)",
                  "separation": "Separation distance (HIB)"}
_CHUNK = 2048  # rows of the other group compared at a time: bounds memory at n x 2048 distances


def _groups(points, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(points, dtype=float)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) != len(y):
        raise AlfiaError(f"points must be (n, k) with one outcome each; got {x.shape} points and {len(y)} outcomes")
    survivors, deaths = x[y == 0], x[y == 1]
    if len(survivors) == 0 or len(deaths) == 0:
        raise AlfiaError("the separation measures need both survivors and deaths")
    return survivors, deaths


def _nearest_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of ``a``, the distance to its nearest row of ``b``."""
    best = np.full(len(a), np.inf)
    for start in range(0, len(b), _CHUNK):
        block = b[start:start + _CHUNK]
        d2 = (a * a).sum(1)[:, None] - 2.0 * a @ block.T + (block * block).sum(1)[None, :]
        best = np.minimum(best, d2.min(axis=1))
    return np.sqrt(np.maximum(best, 0.0))


def separation_measures(points, y) -> dict[str, float]:
    """The five measures of the module docstring, for points ``(n, k)`` and outcomes ``y``."""
    survivors, deaths = _groups(points, y)
    c_s, c_d = survivors.mean(axis=0), deaths.mean(axis=0)
    centroid = float(np.linalg.norm(c_s - c_d))
    intra_s = float(np.linalg.norm(survivors - c_s, axis=1).mean())
    intra_d = float(np.linalg.norm(deaths - c_d, axis=1).mean())
    neighbour = np.concatenate([_nearest_distance(survivors, deaths), _nearest_distance(deaths, survivors)])
    spread = (intra_s + intra_d) / 2.0
    return {"centroid_distance": centroid, "mean_min_neighbour_distance": float(neighbour.mean()),
            "intra_survivor_distance": intra_s, "intra_death_distance": intra_d,
            "separation": centroid / spread if spread > 0 else float("inf")}


class LatentProbe:
    """The PCA plane and the decision boundary in it that LDFR is measured against (module docstring)."""

    def __init__(self, embeddings, y, *, components: int = 2, seed: int = 42):
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(embeddings, dtype=float)
        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            raise AlfiaError("the latent flip rate's probe needs both survivors and deaths among the stays")
        k = max(1, min(components, x.shape[1], len(x) - 1))
        self.pca = PCA(n_components=k, random_state=seed).fit(x)
        self.probe = LogisticRegression(class_weight="balanced", max_iter=1000).fit(self.pca.transform(x), y)

    def decide(self, embeddings) -> np.ndarray:
        """The probe's decision (True: predicted death) for embeddings in the original latent space."""
        return self.probe.predict(self.pca.transform(np.asarray(embeddings, dtype=float))).astype(bool)


def latent_flip_rate(probe: LatentProbe, original, perturbed) -> float:
    """LDFR: the share of stays whose perturbed embedding lands on the other side of the probe's boundary."""
    original, perturbed = np.asarray(original), np.asarray(perturbed)
    if original.shape != perturbed.shape or len(original) == 0:
        raise AlfiaError(f"original and perturbed embeddings must match: {original.shape} vs {perturbed.shape}")
    return float(np.mean(probe.decide(original) != probe.decide(perturbed)))
