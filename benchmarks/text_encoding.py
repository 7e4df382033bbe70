"""Benchmark: clinical text encoding speed (rows/s on one core) and token lengths (issue 3).

Encodes synthetic MIMIC-IV and eICU cohorts (``generate_synthetic``) and the real PhysioNet 2012 cohort
(sets A and B from ../shared/data, built with the project's builder), and prints the Markdown tables that
BENCHMARKS.md records:

- speed: ``encode_cohort`` rows/s, by wall clock and by process CPU time (the encoder is single-threaded,
  so CPU time is what one core needs even when the machine is shared), best of ``--repeats`` runs;
- lengths: tokens per text (with [CLS]/[SEP]) for the default MiniLM tokenizer, p50/p95/max, how many
  texts exceed 256 and 512 tokens, and how many tokens of an average text only spell numbers (first
  2,000 texts), for ``--missing omit`` (the default) and ``state``.

    .venv/bin/python benchmarks/text_encoding.py            # n = 50,000 synthetic rows per variant
    .venv/bin/python benchmarks/text_encoding.py --n 5000   # quicker
    .venv/bin/python benchmarks/text_encoding.py --cohort demo_mimic.parquet   # add real cohort files
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path


DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "physionet2012"


def cohorts(n: int, seed: int, files: list[str]) -> dict:
    from alfia.cohorts.io import infer_variant, read_table
    from alfia.cohorts.sources.synthetic import generate_synthetic

    out = {f"{v} (synthetic, n={n:,})": (v, generate_synthetic(v, n, seed)) for v in ("mimic", "eicu")}
    for path in files:
        df, manifest = read_table(path)
        variant = infer_variant(df, manifest, path)
        out[f"{variant} ({Path(path).name}, n={len(df):,})"] = (variant, df)
    records = [DATA / "set-a.tar.gz", DATA / "set-b.tar.gz"]
    outcomes = [DATA / "Outcomes-a.txt", DATA / "Outcomes-b.txt"]
    if all(p.exists() for p in records + outcomes):
        from alfia.cohorts.sources.physionet2012 import build_physionet2012

        for aggregates in ("compact", "full"):
            df, report = build_physionet2012(records, outcomes, hours=24.0, aggregates=aggregates)
            out[f"{report['variant']} (real, sets A+B, n={len(df):,})"] = (report["variant"], df)
    else:
        print(f"real data absent: {DATA}; PhysioNet 2012 rows skipped", file=sys.stderr)
    return out


def time_encode(df, template: str, repeats: int) -> tuple[float, float]:
    from alfia.text import encode_cohort

    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        encode_cohort(df, template)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return len(df) / best_wall, len(df) / best_cpu


def numeric_tokens(texts: list[str], tokenizer) -> float:
    """Mean number of tokens per text that only spell numbers (digits and decimal points)."""
    import re

    digit = re.compile(r"(##)?[0-9]+|\.")
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    total = 0
    for row in ids:
        total += sum(1 for t in tokenizer.convert_ids_to_tokens(row) if digit.fullmatch(t))
    return total / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000, help="synthetic rows per variant")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cohort", action="append", default=[],
                        help="also measure this cohort file (e.g. one built by `alfia cohort mimic-iv`)")
    args = parser.parse_args()

    import warnings

    from alfia.text import encode_cohort
    from alfia.text.tokens import length_report, load_tokenizer, token_lengths

    warnings.simplefilter("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    data = cohorts(args.n, args.seed, args.cohort)
    tokenizer = load_tokenizer("default")

    extra = "".join(f" --cohort {c}" for c in args.cohort)
    print(f"command: .venv/bin/python benchmarks/text_encoding.py --n {args.n} "
          f"--repeats {args.repeats}{extra}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}; "
          f"date {date.today().isoformat()}")
    print()
    print("| cohort | rows/s (wall) | rows/s (CPU time, one core) |")
    print("|---|---:|---:|")
    for label, (template, df) in data.items():
        wall, cpu = time_encode(df, template, args.repeats)
        print(f"| {label} | {wall:,.0f} | {cpu:,.0f} |", flush=True)
    print()
    print("| cohort | --missing | tokens p50 | p95 | max | > 256 | > 512 | mean tokens | of which numbers |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, (template, df) in data.items():
        for missing in ("omit", "state"):
            texts = encode_cohort(df, template, missing)["text"].tolist()
            lengths = token_lengths(texts, tokenizer)
            r = length_report(lengths)
            numeric = numeric_tokens(texts[:2000], tokenizer)
            print(f"| {label} | {missing} | {r.p50:.0f} | {r.p95:.0f} | {r.max} | "
                  f"{int((lengths > 256).sum()):,} | {int((lengths > 512).sum()):,} | "
                  f"{lengths.mean():.0f} | {numeric:.0f} |", flush=True)


if __name__ == "__main__":
    main()
