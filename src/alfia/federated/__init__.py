"""Federated training across hospitals with Flower (``alfia federated train``).

- :mod:`alfia.federated.sites`: which rows train where (a site column; small hospitals grouped or skipped);
- :mod:`alfia.federated.flower`: the ClientApp each site runs, the ServerApp (Flower's FedAvg), the engines;
- :mod:`alfia.federated.run`: a table in, an ordinary ALFIA run directory out (with the per-site table and,
  on request, the centralised comparison on the same rows).

It sits above ``training`` (it ends a run with ``training.run.finish_run``) and beside ``baselines``/``series``.
"""

from alfia.federated.run import FederatedConfig, FederatedSummary, federated_train
from alfia.federated.sites import Site, SitePlan, plan_sites

__all__ = ["FederatedConfig", "FederatedSummary", "Site", "SitePlan", "federated_train", "plan_sites"]
