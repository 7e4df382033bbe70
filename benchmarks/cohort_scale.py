"""Scale of the MIMIC-IV extraction: replicate the demo k times with shifted ids, time it, track peak RSS.

    .venv/bin/python benchmarks/cohort_scale.py --mimic-dir ../shared/data/mimic-iv-demo --k 1 10 50

Each replica adds k * 10^8 to subject_id / hadm_id / stay_id / specimen_id (ids stay unique), so the
tables grow linearly and the cohort has k * 100 stays. Replicas are written as .csv.gz into a temp
folder outside the repository. Each extraction runs in a fresh process; peak memory is that process's
maximum RSS (Python + DuckDB) from getrusage. DuckDB runs with --memory-limit and spills beyond it.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

TABLES = {
    "hosp": ("patients", "admissions", "diagnoses_icd", "services", "labevents"),
    "icu": ("icustays", "chartevents", "outputevents", "inputevents", "procedureevents"),
}
ID_COLUMNS = ("subject_id", "hadm_id", "stay_id", "specimen_id", "labevent_id", "orderid",
              "linkorderid")
SHIFT = 10**8


def replicate(demo: Path, dst: Path, k: int) -> None:
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    for sub, names in TABLES.items():
        (dst / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            src = demo / sub / f"{name}.csv.gz"
            cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_csv('{src}')").fetchall()]
            sel = ", ".join(f"{c} + r.i * {SHIFT} AS {c}" if c in ID_COLUMNS else c for c in cols)
            con.execute(f"""COPY (SELECT {sel} FROM read_csv('{src}') t, range({k}) r(i))
                            TO '{dst / sub / name}.csv.gz' (HEADER, COMPRESSION gzip)""")


def run_one(mimic_dir: str, memory_limit: str, threads: int | None) -> dict:
    from alfia.cohorts.sources.duck import DuckSettings
    from alfia.cohorts.sources.mimic_iv import MimicConfig, extract_mimic_iv

    t0 = time.perf_counter()
    res = extract_mimic_iv(MimicConfig(mimic_dir, duck=DuckSettings(memory_limit=memory_limit, threads=threads)))
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"stays": len(res.df), "seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mimic-dir", default="../shared/data/mimic-iv-demo")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--memory-limit", nargs="+", default=["1GB"],
                    help="DuckDB memory limit(s); each one is measured on the same replica")
    ap.add_argument("--replicas-dir", default=None,
                    help="keep replicas in DIR/k<k> and reuse them (default: temp folder, deleted)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.memory_limit[0], args.threads)))
        return
    demo = Path(args.mimic_dir).resolve()
    rows = []
    for k in args.k:
        keep = args.replicas_dir is not None
        work = (Path(args.replicas_dir) / f"k{k}" if keep
                else Path(tempfile.mkdtemp(prefix=f"alfia-scale-k{k}-")))
        try:
            if not (work / "icu" / "chartevents.csv.gz").exists():
                replicate(demo, work, k)
            size = sum(p.stat().st_size for p in work.rglob("*.csv.gz"))
            for limit in args.memory_limit:
                cmd = [sys.executable, __file__, "--child", str(work), "--memory-limit", limit]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True)
                row = {"k": k, "memory_limit": limit, "input_mib": round(size / 2**20, 1)}
                if out.returncode != 0:
                    row["error"] = (out.stderr.strip().splitlines() or ["?"])[-1]
                    print(json.dumps(row), flush=True)
                    continue
                row.update(json.loads(out.stdout.splitlines()[-1]))
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            if not keep:
                shutil.rmtree(work, ignore_errors=True)
    rows = [r for r in rows if r["memory_limit"] == args.memory_limit[0] and "error" not in r]
    if len(rows) >= 2:
        # Linear extrapolation from the last two points to full MIMIC-IV (~94k ICU stays; the demo
        # has 140 ICU stays per replica, so full size is k ~ 671).
        a, b = rows[-2], rows[-1]
        k_full = 94_000 / 140
        dk = b["k"] - a["k"]
        print(json.dumps({
            "k_full_mimic": round(k_full),
            "extrapolated_seconds": round(b["seconds"] + (b["seconds"] - a["seconds"]) / dk * (k_full - b["k"])),
            "extrapolated_peak_rss_mib_if_linear": round(
                b["peak_rss_mib"] + (b["peak_rss_mib"] - a["peak_rss_mib"]) / dk * (k_full - b["k"])),
        }))

if __name__ == "__main__":
    main()
