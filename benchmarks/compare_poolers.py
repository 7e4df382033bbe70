"""Compare two trained ALFIA runs on the same rows (ALF vs an ablation pooler, or two learning rates).

    .venv/bin/python benchmarks/compare_poolers.py RUN_A RUN_B [--n-texts 16] [--n-boot 1000] [--seed 42]

Prints, for the test split: the paired stratified bootstrap of the AUPRC and AUROC differences (A minus B,
``alfia.evaluation.paired_compare``), and how much each run's test probabilities vary. Then, on the first
--n-texts validation texts of the run's own text table, how much the pooled embedding varies across
patients (mean over dimensions of the per-dimension SD), its mean norm and the SD of the logits, for the
trained run and for an untrained model of the same config (seed --seed). A model whose output collapsed to
a constant shows a probability SD near 0 and an embedding spread that shrank during training.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def spread(model, texts: list[str]) -> dict:
    import torch

    model.eval()
    batch = model.tokenize(texts)
    with torch.no_grad():
        out = model(**batch)
    return {"embedding_sd": float(out.embedding.std(0).mean()), "embedding_norm": float(out.embedding.norm(dim=-1).mean()),
            "logit_sd": float(out.logits.std())}


def main(argv=None) -> None:
    import torch

    from alfia.cohorts.io import read_table
    from alfia.evaluation import paired_compare
    from alfia.models import AlfiaConfig, AlfiaModel, build_model
    from alfia.runs import read_predictions
    from alfia.runs import read_alfia_config
    from alfia.runtime import set_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--n-texts", type=int, default=16)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    set_threads(args.threads)

    preds = {run: read_predictions(run / "predictions.parquet") for run in (args.run_a, args.run_b)}
    paired = paired_compare(preds[args.run_a], preds[args.run_b], "test", n_boot=args.n_boot, seed=args.seed)
    print(f"A = {args.run_a}, B = {args.run_b}; test split, {paired['n']} stays, {paired['n_pos']} deaths")
    for metric in ("auprc", "auroc"):
        p = paired[metric]
        print(f"{metric.upper()}: A {p['a']:.3f}, B {p['b']:.3f}, A - B {p['difference']:+.3f} "
              f"(95% CI {p['ci_low']:+.3f} to {p['ci_high']:+.3f}, p = {p['p_value']:.3f})")
    print("\n| Run | Test probability SD | min-max | Embedding SD untrained -> trained | Norm | Logit SD untrained -> trained |")
    print("|---|---|---|---|---|---|")
    for run in (args.run_a, args.run_b):
        test = preds[run][preds[run]["split"] == "test"]["prob"]
        config = read_alfia_config(run)
        table, _ = read_table(config["data"]["path"])
        texts = table[table["split"] == "val"]["text"].head(args.n_texts).tolist()
        trained = spread(AlfiaModel.from_pretrained(run), texts)
        torch.manual_seed(args.seed)
        untrained = spread(build_model(AlfiaConfig.from_dict(config["model"])), texts)
        print(f"| {run} | {test.std():.4f} | {test.min():.3f}-{test.max():.3f} | "
              f"{untrained['embedding_sd']:.3f} -> {trained['embedding_sd']:.3f} | "
              f"{untrained['embedding_norm']:.1f} -> {trained['embedding_norm']:.1f} | "
              f"{untrained['logit_sd']:.2f} -> {trained['logit_sd']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
