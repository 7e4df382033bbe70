"""MIMIC-IV step 2, vitals and interventions (``icu/``): charted vitals and GCS, urine output, and the
ventilation, dialysis and vasopressor intervals."""

from __future__ import annotations

from typing import Any

import pandas as pd

from alfia.cohorts import scores
from alfia.cohorts.sources.duck import SourceTables
from alfia.cohorts.sources.mimic_iv_common import (
    DIALYSIS_ITEMIDS, GU_IRRIGANT_IN, INVASIVE_VENT, NONINVASIVE_VENT, URINE_ITEMIDS, VASOPRESSORS, WINDOW_END_H,
    WINDOW_START_H, active_at, overlaps_window, sql_hours, sql_in_list, sql_in_window,
)

# chartevents: concept, itemids, scale, shift, plausible raw range (exclusive), as mimic-code vitalsign
CHART_CONCEPTS: list[tuple[str, tuple[int, ...], float, float, float, float]] = [
    ("heart_rate", (220045,), 1, 0, 0, 300),
    ("sbp", (220050, 220179, 225309), 1, 0, 0, 400),
    ("mbp", (220052, 220181, 225312), 1, 0, 0, 300),
    ("resp_rate", (220210, 224690), 1, 0, 0, 70),
    ("temperature", (223762,), 1, 0, 10, 50),
    ("temperature", (223761,), 1 / 1.8, -32 / 1.8, 70, 120),  # Fahrenheit -> Celsius
    ("glucose", (225664, 220621, 226537), 1, 0, 0, 10000),
    ("fio2", (223835,), 1, 0, 0, 101),  # percent or fraction; normalised in SQL
    ("gcs_motor", (223901,), 1, 0, 0, 7),
    ("gcs_verbal", (223900,), 1, 0, 0, 6),
    ("gcs_eyes", (220739,), 1, 0, 0, 5),
    ("height", (226730,), 1, 0, 120, 230),
    ("height", (226707,), 2.54, 0, 120 / 2.54, 230 / 2.54),  # inches -> cm
    ("weight", (226512, 224639), 1, 0, 0, 700),
    ("weight", (226531,), 0.45359237, 0, 0, 1500),  # pounds -> kg
]


def stage_chartevents(t: SourceTables) -> None:
    rows = [(i, c, s, sh, lo, hi) for c, ids, s, sh, lo, hi in CHART_CONCEPTS for i in ids]
    values = ", ".join(f"({i}, '{c}', {s!r}, {sh!r}, {lo!r}, {hi!r})" for i, c, s, sh, lo, hi in rows)
    t.execute(f"CREATE OR REPLACE TABLE chart_map AS SELECT * FROM (VALUES {values}) "
              f"v(itemid, concept, scale, shift, lo, hi)")
    ett = ("(ce.itemid = 223900 AND ce.value = 'No Response-ETT')"
           if t.has_column("chartevents", "value") else "NULL::BOOLEAN")
    t.execute(f"""
        CREATE OR REPLACE TABLE chart_rel AS
        SELECT c.stay_id, m.concept, {sql_hours('ce.charttime')} AS hours,
               CASE WHEN m.concept = 'fio2' THEN
                        CASE WHEN ce.valuenum > 0.2 AND ce.valuenum <= 1 THEN ce.valuenum * 100
                             WHEN ce.valuenum >= 20 AND ce.valuenum <= 100 THEN ce.valuenum END
                    WHEN ce.valuenum > m.lo AND ce.valuenum < m.hi
                        THEN ce.valuenum * m.scale + m.shift END AS value,
               {ett} AS verbal_ett
        FROM chartevents ce
        JOIN cohort c ON CAST(ce.stay_id AS BIGINT) = c.stay_id
        JOIN chart_map m ON ce.itemid = m.itemid
    """, ("chartevents",))
    t.execute(f"CREATE OR REPLACE VIEW chart_win AS SELECT * FROM chart_rel "
              f"WHERE value IS NOT NULL AND {sql_in_window('hours')}")


def stage_intervals(t: SourceTables) -> pd.DataFrame:
    """Ventilation / dialysis intervals of cohort stays (all times; checked later) as a frame; vasopressor
    intervals as DuckDB table ``vaso_rel``."""
    proc_ids = (INVASIVE_VENT, NONINVASIVE_VENT, *DIALYSIS_ITEMIDS)
    proc = t.df(f"""
        SELECT c.stay_id, p.itemid, {sql_hours('p.starttime')} AS start_h, {sql_hours('p.endtime')} AS end_h,
               NULL::DOUBLE AS rate
        FROM procedureevents p JOIN cohort c ON p.stay_id = c.stay_id
        WHERE p.itemid IN ({sql_in_list(proc_ids)})
    """, ("procedureevents",))
    # Vasopressor intervals stay in DuckDB: their per-hour expansion would grow with the table size.
    t.execute(f"""
        CREATE OR REPLACE TABLE vaso_rel AS
        SELECT c.stay_id, i.itemid, {sql_hours('i.starttime')} AS start_h, {sql_hours('i.endtime')} AS end_h,
               CASE WHEN i.rateuom = 'mg/kg/min' THEN i.rate * 1000 ELSE i.rate END AS rate
        FROM inputevents i JOIN cohort c ON i.stay_id = c.stay_id
        WHERE i.itemid IN ({sql_in_list(VASOPRESSORS)}) AND i.rate IS NOT NULL
          AND i.rateuom IN ('mcg/kg/min', 'mg/kg/min')
    """, ("inputevents",))
    return proc


def stage_urine(t: SourceTables) -> None:
    t.execute(f"""
        CREATE OR REPLACE TABLE urine_rel AS
        SELECT c.stay_id, {sql_hours('o.charttime')} AS hours,
               CASE WHEN o.itemid = {GU_IRRIGANT_IN} THEN -o.value ELSE o.value END AS value
        FROM outputevents o JOIN cohort c ON o.stay_id = c.stay_id
        WHERE o.itemid IN ({sql_in_list(URINE_ITEMIDS)}) AND o.value IS NOT NULL
    """, ("outputevents",))


def urine_output(t: SourceTables) -> pd.DataFrame:
    """Per stay: urine output summed over the window (ml)."""
    return t.df(f"SELECT stay_id, sum(value) AS urine_output FROM urine_rel "
                f"WHERE {sql_in_window('hours')} GROUP BY 1").set_index("stay_id")


def flag_support_over_window(wide: pd.DataFrame, intervals: pd.DataFrame) -> None:
    """Columns vent, cpap, rrt: 1 when an interval of invasive ventilation, non-invasive ventilation or
    dialysis overlaps the window."""
    iv = intervals[overlaps_window(intervals)]
    for name, ids in (("vent", [INVASIVE_VENT]), ("cpap", [NONINVASIVE_VENT]),
                      ("rrt", list(DIALYSIS_ITEMIDS))):
        on = set(iv.loc[iv["itemid"].isin(ids), "stay_id"])
        wide[name] = wide.index.isin(on).astype(int)


def gcs_assessments(t: SourceTables, intervals: pd.DataFrame, facts: dict[str, Any]) -> pd.DataFrame:
    """GCS assessments in the window (one row per stay and charting time), from the charted components.

    Without the text ``value`` column, a verbal score of 1 during invasive ventilation is taken as the
    intubated code (counted in ``facts``).
    """
    comp = t.df("""
        SELECT stay_id, hours,
               max(value) FILTER (WHERE concept = 'gcs_motor') AS motor,
               max(value) FILTER (WHERE concept = 'gcs_verbal') AS verbal,
               max(value) FILTER (WHERE concept = 'gcs_eyes') AS eyes,
               bool_or(verbal_ett) AS verbal_ett
        FROM chart_win WHERE concept IN ('gcs_motor', 'gcs_verbal', 'gcs_eyes') GROUP BY 1, 2
    """)
    if not t.has_column("chartevents", "value") and not comp.empty:
        inferred = comp["verbal"].eq(1) & active_at(intervals, comp, [INVASIVE_VENT])
        comp["verbal_ett"] = inferred
        facts["gcs_verbal_ett_inferred_from_ventilation"] = int(inferred.sum())
    return scores.gcs_from_components(comp)


def interval_integrity(t: SourceTables, intervals: pd.DataFrame) -> dict[str, dict]:
    """Intervals used (overlapping the window) and excluded, per kind of intervention."""
    iv_report = {}
    names = {INVASIVE_VENT: "invasive_ventilation", NONINVASIVE_VENT: "noninvasive_ventilation",
             **{i: "dialysis" for i in DIALYSIS_ITEMIDS}, **VASOPRESSORS}
    for itemid_name, part in intervals.assign(name=intervals["itemid"].map(names)).groupby("name"):
        ok = overlaps_window(part)
        iv_report[f"intervals.{itemid_name}"] = {"used": int(ok.sum()),
                                                 "excluded_out_of_window": int((~ok).sum())}
    overlaps = f"(end_h >= {WINDOW_START_H} AND start_h <= {WINDOW_END_H})"
    vaso_counts = t.df(f"""SELECT itemid, count(*) FILTER (WHERE {overlaps}) AS used,
                                  count(*) FILTER (WHERE NOT {overlaps}) AS excluded
                           FROM vaso_rel GROUP BY 1""")
    for r in vaso_counts.itertuples(index=False):
        iv_report[f"intervals.{names[int(r.itemid)]}"] = {"used": int(r.used),
                                                          "excluded_out_of_window": int(r.excluded)}
    return iv_report
