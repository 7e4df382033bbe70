"""MIMIC-IV step 3, laboratory values (``hosp/labevents``): chemistry, blood count, coagulation and the
arterial blood gases, as the scores read them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.scores.apsiii import acid_base_points
from alfia.cohorts.sources.duck import SourceTables
from alfia.cohorts.sources.mimic_iv_common import (
    INVASIVE_VENT, NONINVASIVE_VENT, active_at, sql_hours, sql_in_window,
)

LAB_CONCEPTS: list[tuple[str, tuple[int, ...], float, float]] = [
    ("creatinine", (50912,), 0, 150), ("bun", (51006,), 0, 300), ("sodium", (50983,), 0, 200),
    ("potassium", (50971,), 0, 30), ("bicarbonate", (50882,), 0, 10000),
    ("bilirubin", (50885,), 0, 150), ("albumin", (50862,), 0, 10), ("glucose_lab", (50931,), 0, 10000),
    ("wbc", (51300, 51301), 0, 1000), ("hematocrit", (51221,), 0, 100),
    ("platelet", (51265,), 0, 10000), ("inr", (51237,), 0, 50), ("pt", (51274,), 0, 150),
    ("bands", (51144,), -0.001, 100),
    # blood gas (mimic-code bg)
    ("bg_po2", (50821,), 0, 800), ("bg_pco2", (50818,), 0, 200), ("bg_ph", (50820,), 6.0, 8.0),
    ("bg_fio2", (50816,), 0, 101), ("bg_aado2", (50801,), -100, 1000),
]
SPECIMEN_ITEMID = 52033


def stage_labevents(t: SourceTables) -> None:
    rows = [(i, c, lo, hi) for c, ids, lo, hi in LAB_CONCEPTS for i in ids]
    values = ", ".join(f"({i}, '{c}', {lo!r}, {hi!r})" for i, c, lo, hi in rows)
    values += f", ({SPECIMEN_ITEMID}, 'bg_specimen', 0, 0)"
    t.execute(f"CREATE OR REPLACE TABLE lab_map AS SELECT * FROM (VALUES {values}) "
              f"v(itemid, concept, lo, hi)")
    # Labs follow the patient (mimic-code first_day_lab joins on subject_id): a sample drawn in the
    # emergency department before the ICU, or before hadm_id is assigned, still counts in the window.
    t.execute(f"""
        CREATE OR REPLACE TABLE lab_rel AS
        SELECT c.stay_id, m.concept, l.specimen_id, {sql_hours('l.charttime')} AS hours,
               CASE WHEN m.concept = 'bg_specimen' THEN NULL
                    WHEN l.valuenum > m.lo AND l.valuenum < m.hi THEN l.valuenum END AS value,
               CASE WHEN m.concept = 'bg_specimen' THEN l.value END AS text
        FROM labevents l
        JOIN cohort c ON l.subject_id = c.subject_id
        JOIN lab_map m ON l.itemid = m.itemid
    """, ("labevents",))
    t.execute(f"CREATE OR REPLACE VIEW lab_win AS SELECT * FROM lab_rel "
              f"WHERE (value IS NOT NULL OR text IS NOT NULL) AND {sql_in_window('hours')}")


def _pivot_minmax(long: pd.DataFrame) -> pd.DataFrame:
    wide = long.pivot(index="stay_id", columns="concept", values=["vmin", "vmax"])
    wide.columns = [f"{c}_{'min' if s == 'vmin' else 'max'}" for s, c in wide.columns]
    return wide


def blood_gases(t: SourceTables, intervals: pd.DataFrame) -> pd.DataFrame:
    """Arterial blood gases in the window with FiO2 (lab, else charted within 4 h before), flags."""
    bg = t.df("""
        WITH g AS (
            SELECT stay_id, specimen_id, min(hours) AS hours,
                   max(value) FILTER (WHERE concept = 'bg_po2') AS po2,
                   max(value) FILTER (WHERE concept = 'bg_pco2') AS pco2,
                   max(value) FILTER (WHERE concept = 'bg_ph') AS ph,
                   max(value) FILTER (WHERE concept = 'bg_fio2') AS fio2_lab,
                   max(value) FILTER (WHERE concept = 'bg_aado2') AS aado2_lab,
                   max(text) FILTER (WHERE concept = 'bg_specimen') AS specimen
            FROM lab_win WHERE concept LIKE 'bg_%' GROUP BY stay_id, specimen_id
        ), f AS (SELECT stay_id, hours, value AS fio2 FROM chart_win WHERE concept = 'fio2')
        SELECT g.*, f.fio2 AS fio2_chart, g.hours - f.hours AS fio2_chart_age_h
        FROM g ASOF LEFT JOIN f ON g.stay_id = f.stay_id AND g.hours >= f.hours
        WHERE g.specimen = 'ART.'
    """)
    if bg.empty:
        return bg
    fio2_lab = bg["fio2_lab"].where(bg["fio2_lab"] > 1, bg["fio2_lab"] * 100)
    fio2_lab = fio2_lab.where((fio2_lab >= 20) & (fio2_lab <= 100))
    chart = bg["fio2_chart"].where(bg["fio2_chart_age_h"] <= 4)
    bg["fio2"] = fio2_lab.fillna(chart)
    bg["pao2fio2"] = bg["po2"] / (bg["fio2"] / 100.0)
    calc = (bg["fio2"] / 100.0) * (760 - 47) - bg["pco2"] / 0.8 - bg["po2"]
    bg["aado2"] = bg["aado2_lab"].fillna(calc)
    bg["vent"] = active_at(intervals, bg, [INVASIVE_VENT]).to_numpy()
    bg["cpap"] = active_at(intervals, bg, [NONINVASIVE_VENT]).to_numpy()
    bg["acidbase_score"] = acid_base_points(bg["ph"], bg["pco2"])
    return bg


def join_vital_and_lab_extremes(t: SourceTables, wide: pd.DataFrame) -> pd.DataFrame:
    """Per stay: the window's min and max of each charted vital and each laboratory value (``<concept>_min``,
    ``<concept>_max``; blood gases are read by :func:`blood_gases`)."""
    chart = t.df("SELECT stay_id, concept, min(value) AS vmin, max(value) AS vmax FROM chart_win "
                 "WHERE concept IN ('heart_rate','sbp','mbp','resp_rate','temperature','glucose') "
                 "GROUP BY ALL")
    labs = t.df("SELECT stay_id, concept, min(value) AS vmin, max(value) AS vmax FROM lab_win "
                "WHERE concept NOT LIKE 'bg_%' GROUP BY ALL")
    return wide.join(_pivot_minmax(chart), how="left").join(_pivot_minmax(labs), how="left")


def take_worse_glucose(wide: pd.DataFrame) -> None:
    """Glucose: the more extreme of charted (fingerstick) and laboratory values (mimic-code apsiii)."""
    for s in ("min", "max"):
        a, b = wide.get(f"glucose_{s}"), wide.get(f"glucose_lab_{s}")
        if a is None:
            a = pd.Series(np.nan, index=wide.index)
        if b is None:
            b = pd.Series(np.nan, index=wide.index)
        wide[f"glucose_{s}"] = np.fmin(a, b) if s == "min" else np.fmax(a, b)


def join_blood_gas_worst(wide: pd.DataFrame, bg: pd.DataFrame) -> pd.DataFrame:
    """The worst arterial blood-gas values per stay, as the scores read them."""
    if bg.empty:
        return wide
    g = bg.groupby("stay_id")
    vent_or_cpap = bg[bg["vent"] | bg["cpap"]]
    wide = wide.join(vent_or_cpap.groupby("stay_id")["pao2fio2"].min().rename("pao2fio2_vent_min"))
    off = bg[~bg["vent"] & (bg["fio2"].fillna(21) < 50) & bg["po2"].notna()]
    wide = wide.join(off.groupby("stay_id")["po2"].max().rename("pao2"))
    on = bg[bg["vent"] & (bg["fio2"] >= 50) & bg["aado2"].notna()]
    wide = wide.join(on.groupby("stay_id")["aado2"].max().rename("aado2"))
    return wide.join(g["acidbase_score"].max()).join(g["pco2"].min().rename("paco2_min"))
