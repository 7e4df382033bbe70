"""What one training step costs by the number of trained top layers K, over a cached bottom (issue 19).

    .venv/bin/python benchmarks/train_layers.py --text /work/bench/pn/text.parquet [--ks 1 2 3 6]
        [--finetune full lora] [--prune-layers every-other --fusion-layers 3] [--threads 2] [--steps 4]

For each K: an ALFIA model on the real texts (the default all-MiniLM-L6-v2 unless --backbone), the frozen bottom
of 64 median-length texts cached once (``compute_frozen_states`` of ``bottom_indices``), then forward + backward +
AdamW steps of batch 16 over the cache, as ``alfia train`` runs them (K = all layers: over the tokens). Prints
ms per text per step (median of --steps after one warm-up), ms per text of caching the bottom, and the projected
epoch of 6,000 texts. Also the 1-minute load average before and after, which says whether the figures count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd
import torch


def main(argv=None) -> None:
    from alfia.models import AlfiaConfig, build_model
    from alfia.runtime import compute_frozen_states, make_loader, set_threads, tokenize_texts
    from alfia.runtime.forward import forward_batch
    from alfia.training.config import TrainConfig
    from alfia.training.loop import _optimizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", required=True)
    parser.add_argument("--backbone", default=None)
    parser.add_argument("--ks", nargs="+", default=["1", "2", "3", "all"])
    parser.add_argument("--finetune", nargs="+", default=["full"])
    parser.add_argument("--prune-layers", default=None)
    parser.add_argument("--fusion-layers", type=int, default=4, help="N_f (at most the layers left after pruning)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    texts = pd.read_parquet(args.text, columns=["text", "split"])
    texts = texts[texts["split"] == "train"]["text"].tolist()[:2000]
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for finetune in args.finetune:
        for k in args.ks:
            config = AlfiaConfig(backbone=args.backbone, train_layers=k, finetune=finetune,
                                 prune_layers=args.prune_layers, n_fusion_layers=args.fusion_layers)
            model = build_model(config)
            tok = model.tokenizer
            lengths = np.array([len(x) for x in tok(texts)["input_ids"]])
            chosen = np.argsort(np.abs(lengths - np.median(lengths)))[:64]
            data = tokenize_texts([texts[i] for i in chosen], tok, model.max_length, labels=np.arange(64) % 2)
            device = torch.device("cpu")
            started = time.perf_counter()
            if model.bottom_indices is not None:
                source = compute_frozen_states(model, data, layers=model.bottom_indices, batch_size=64,
                                               pad_token_id=tok.pad_token_id, device=device)
            else:
                source = data
            cache_ms = (time.perf_counter() - started) / 64 * 1000 if model.bottom_indices is not None else 0.0
            model.train()
            optimizer = _optimizer(model, TrainConfig())
            loader, _ = make_loader(source, 16, tok.pad_token_id, shuffle=False)
            batch = next(iter(loader))
            times = []
            for step in range(args.steps + 1):
                t = time.perf_counter()
                out = forward_batch(model, batch, device)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, batch["labels"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step:
                    times.append(time.perf_counter() - t)
            step_ms = statistics.median(times) / 16 * 1000
            tokens = int(batch["attention_mask"].shape[1])
            print(f"K={k:>3} {finetune:>4} layers={model.num_backbone_layers} tokens={tokens}: "
                  f"{step_ms:6.1f} ms/text per step, caching the bottom {cache_ms:5.1f} ms/text, "
                  f"an epoch of 6,000 texts ~{step_ms * 6000 / 60000:.1f} min")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
