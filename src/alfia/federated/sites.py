"""The sites of a federated run: which rows train where, from a site column (eICU's ``hospitalid``, P12's
``icu_type``).

A value of the site column (a hospital) with at least ``min_stays`` training stays and ``min_deaths`` training
deaths is a site of its own. The smaller ones are pooled (``group_small``), in the order of their id (within each
value of ``group_by`` when given, e.g. the region), into groups that each reach both minimums; a last group that
falls short joins the group before it. Without ``group_small``, or where no group can reach the minimums, the
small ones are skipped: their rows leave the run, and the centralised comparison leaves them out too. Every
decision is one line of :attr:`SitePlan.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alfia.cohorts.schema import OUTCOME_COLUMN, SPLIT_COLUMN, SPLITS
from alfia.cohorts.validate import row_name
from alfia.errors import AlfiaError

_SHOWN = 8  # member ids listed in a message before "..."


@dataclass(frozen=True)
class Site:
    name: str
    members: tuple  # the site column's values (hospitals) whose rows train here
    rows: dict[str, int]  # rows per split
    deaths: dict[str, int]

    def to_dict(self) -> dict:
        return {"name": self.name, "members": [_plain(m) for m in self.members], "rows": self.rows,
                "deaths": self.deaths}


@dataclass(frozen=True)
class SitePlan:
    column: str
    sites: tuple[Site, ...]
    skipped: tuple  # site-column values whose rows leave the run
    row_site: np.ndarray  # per row of the table: the index of its site in ``sites``, -1 when skipped
    messages: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"column": self.column, "sites": [s.to_dict() for s in self.sites],
                "skipped": [_plain(m) for m in self.skipped], "skipped_rows": int((self.row_site < 0).sum())}

    def site_names(self) -> np.ndarray:
        """Per row: its site's name ('' when skipped)."""
        names = np.array([s.name for s in self.sites] + [""], dtype=object)
        return names[self.row_site]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _ids(members) -> str:
    shown = ", ".join(str(_plain(m)) for m in members[:_SHOWN])
    return shown + (f", ... ({len(members)} in all)" if len(members) > _SHOWN else "")


def plan_sites(df: pd.DataFrame, column: str, *, min_stays: int = 200, min_deaths: int = 5,
               group_small: bool = True, group_by: str | None = None, source: str = "table") -> SitePlan:
    """The sites of ``df`` (rows with ``split`` and the outcome), as the module docstring says."""
    if min_stays < 1 or min_deaths < 1:
        raise AlfiaError(f"min_stays and min_deaths must be >= 1, got {min_stays} and {min_deaths}")
    for needed in (column, *([group_by] if group_by else [])):
        if needed not in df.columns:
            raise AlfiaError(f"{source}: no column {needed!r} to take the sites from (columns: "
                             f"{', '.join(map(str, df.columns[:12]))}{' ...' if len(df.columns) > 12 else ''})")
    empty = df[column].isna().to_numpy()
    if empty.any():
        raise AlfiaError(f"{source}: {row_name(df, int(np.flatnonzero(empty)[0]))}: column {column!r} is empty "
                         f"({int(empty.sum())} rows); every row needs its site")
    values = df[column].to_numpy()
    train = (df[SPLIT_COLUMN] == "train").to_numpy()
    deaths = df[OUTCOME_COLUMN].to_numpy().astype(int) == 1
    members = sorted(pd.unique(values), key=lambda v: (str(type(v)), v))
    n_train = {m: int((train & (values == m)).sum()) for m in members}
    d_train = {m: int((train & deaths & (values == m)).sum()) for m in members}
    big = [m for m in members if n_train[m] >= min_stays and d_train[m] >= min_deaths]
    small = [m for m in members if m not in set(big)]
    messages = [f"{len(big)} {column} value(s) with >= {min_stays} training stays and >= {min_deaths} training "
                f"deaths are sites of their own; {len(small)} are smaller"]
    groups: list[list] = [[m] for m in big]
    names = [f"{column}-{_plain(m)}" for m in big]
    skipped: list = []
    if small and group_small:
        key = (df.groupby(column)[group_by].agg(lambda s: s.mode().iloc[0] if s.notna().any() else "")
               if group_by else pd.Series("", index=small))
        formed: list[list] = []
        leftover: list = []
        for value in sorted({str(key[m]) for m in small}):
            chunk, n, d = [], 0, 0
            block: list[list] = []
            for m in (m for m in small if str(key[m]) == value):
                chunk.append(m)
                n, d = n + n_train[m], d + d_train[m]
                if n >= min_stays and d >= min_deaths:
                    block.append(chunk)
                    chunk, n, d = [], 0, 0
            if chunk and block:
                block[-1] += chunk  # the short last group joins the one before it
            elif chunk:
                leftover += chunk  # nothing of this key reached the minimums alone
            formed += block
        if leftover:  # pooled across keys; what still falls short joins the last group, or is skipped
            chunk, n, d = [], 0, 0
            for m in leftover:
                chunk.append(m)
                n, d = n + n_train[m], d + d_train[m]
                if n >= min_stays and d >= min_deaths:
                    formed.append(chunk)
                    chunk, n, d = [], 0, 0
            if chunk and formed:
                formed[-1] += chunk
            elif chunk:
                skipped = chunk
        for i, chunk in enumerate(formed, 1):
            label = f" ({group_by} {key[chunk[0]]})" if group_by and len({str(key[m]) for m in chunk}) == 1 else ""
            groups.append(chunk)
            names.append(f"group-{i}")
            messages.append(f"group-{i}{label}: {len(chunk)} {column} value(s) pooled ({_ids(chunk)}): "
                            f"{sum(n_train[m] for m in chunk)} training stays, {sum(d_train[m] for m in chunk)} deaths")
    elif small:
        skipped = small
    if skipped:
        messages.append(f"skipped {len(skipped)} {column} value(s) ({_ids(skipped)}; "
                        f"{sum(n_train[m] for m in skipped)} training stays, {sum(d_train[m] for m in skipped)} "
                        f"deaths): below --min-stays {min_stays} / --min-deaths {min_deaths}"
                        + ("" if group_small else " and --no-group-small") + "; their rows leave the run")
    if len(groups) < 2:
        raise AlfiaError(f"{source}: {len(groups)} site(s) from column {column!r} (min_stays={min_stays}, "
                         f"min_deaths={min_deaths}): federated training needs at least 2; lower --min-stays or "
                         f"--min-deaths")
    index_of = {m: i for i, chunk in enumerate(groups) for m in chunk}
    row_site = np.array([index_of.get(v, -1) for v in values], dtype=np.int64)
    split = df[SPLIT_COLUMN].to_numpy()
    sites = tuple(Site(name, tuple(chunk),
                       {s: int(((row_site == i) & (split == s)).sum()) for s in SPLITS},
                       {s: int(((row_site == i) & (split == s) & deaths).sum()) for s in SPLITS})
                  for i, (name, chunk) in enumerate(zip(names, groups)))
    return SitePlan(column, sites, tuple(skipped), row_site, tuple(messages))
