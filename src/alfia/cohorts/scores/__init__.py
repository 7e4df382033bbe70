"""Severity scores as pure functions over per-stay inputs.

One module per score, each citing its published definition and following the MIT-LCP mimic-code concept
logic (same thresholds, same "worst value" rules, missing component = normal). Inputs are pandas frames
with one row per ICU stay (or per stay-hour for SOFA, per charting time for GCS); column names are listed
in each module's ``INPUTS``. The SQL that gathers these inputs from MIMIC-IV or eICU lives in
``alfia.cohorts.sources`` and is kept apart, so every score can be tested on hand-computed patients.
"""

from alfia.cohorts.scores.apsiii import apsiii
from alfia.cohorts.scores.gcs import gcs_dynamics, gcs_from_components, gcs_worst
from alfia.cohorts.scores.lods import lods
from alfia.cohorts.scores.meld import meld
from alfia.cohorts.scores.oasis import oasis
from alfia.cohorts.scores.sapsii import sapsii
from alfia.cohorts.scores.sirs import sirs
from alfia.cohorts.scores.sofa import sofa_dynamics, sofa_hourly

__all__ = ["apsiii", "gcs_dynamics", "gcs_from_components", "gcs_worst", "lods", "meld", "oasis",
           "sapsii", "sirs", "sofa_dynamics", "sofa_hourly"]
