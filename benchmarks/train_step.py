"""Time one ALFIA training step (forward + backward + AdamW step) by token length and attention dropout.

    .venv/bin/python benchmarks/train_step.py [--lengths 256 512] [--attention-dropout backbone 0]
        [--batch-size 16] [--repeats 3] [--threads 2] [--backbone ID_OR_DIR]

Texts: the real PhysioNet 2012 descriptions from ../shared/data when present (long enough to fill 512 tokens),
otherwise synthetic MIMIC-like texts (shorter; the script says which). Every batch is truncated to the
requested length and padded to it, so each length is timed at exactly that many tokens. Prints a Markdown
table of the median ms per sample over --repeats steps (after one warm-up step), and the speed-up of each
attention-dropout setting over the backbone's own rate.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "physionet2012"


def load_texts(n: int) -> tuple[list[str], str]:
    if DATA.exists():
        from alfia.cohorts.sources.physionet2012 import build_physionet2012
        from alfia.text import encode_cohort

        cohort, _ = build_physionet2012([DATA / "set-a.tar.gz"], [DATA / "Outcomes-a.txt"], hours=24.0)
        texts = encode_cohort(cohort.head(n))["text"].tolist()
        return texts, "PhysioNet 2012 set A (real)"
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.text import encode_cohort

    cohort = generate_synthetic("mimic", n=n, seed=42)
    return encode_cohort(cohort)["text"].tolist(), "synthetic MIMIC-like (../shared/data absent)"


def time_steps(texts: list[str], length: int, attention_dropout: float | None, args) -> tuple[float, float]:
    """(median ms per sample of a training step, the attention dropout rate in force)."""
    import torch

    from alfia.models import AlfiaConfig, build_model
    from alfia.models.backbone import attention_dropout_rates

    torch.manual_seed(42)
    model = build_model(AlfiaConfig(backbone=args.backbone, max_length=length, attention_dropout=attention_dropout))
    model.train()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    batch = model.tokenizer(texts[:args.batch_size], padding="max_length", truncation=True, max_length=length,
                            return_tensors="pt")
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    labels = torch.zeros(len(texts[:args.batch_size]))
    seconds = []
    for step in range(args.repeats + 1):  # step 0 warms up
        started = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**inputs).logits.view(-1), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step:
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) / len(labels) * 1000, attention_dropout_rates(model)[0]


def main(argv=None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--attention-dropout", nargs="+", default=["backbone", "0"],
                        help="'backbone' (the backbone's own rate) and/or numbers")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--backbone", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        from alfia.runtime import set_threads

        set_threads(args.threads)
    texts, origin = load_texts(max(args.batch_size, 16))
    settings = [None if s == "backbone" else float(s) for s in args.attention_dropout]
    print(f"{date.today()}, {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"batch size {args.batch_size}, texts: {origin}\n")
    print("| Tokens | Attention dropout | ms/sample per training step | Speed-up vs the backbone's rate |")
    print("|---|---|---|---|")
    for length in args.lengths:
        baseline = None
        for setting in settings:
            ms, rate = time_steps(texts, length, setting, args)
            baseline = ms if setting is None else baseline
            speedup = f"{baseline / ms:.2f}x" if baseline is not None and setting is not None else "—"
            label = f"backbone's own ({rate:g})" if setting is None else f"{rate:g}"
            print(f"| {length} | {label} | {ms:.0f} | {speedup} |", flush=True)


if __name__ == "__main__":
    main()
