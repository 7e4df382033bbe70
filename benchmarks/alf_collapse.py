"""Why ALF's output stopped varying across patients (issue 10), measured on cached frozen MiniLM states.

    .venv/bin/python benchmarks/alf_collapse.py TEXT.parquet alf,alf_nogate,alf_drop0,alf_bias,alf_std,alf_lr2e-4,static

TEXT.parquet: a PhysioNet 2012 text table (`alfia cohort physionet2012` + `alfia encode`). 2,000 training and
600 validation stays (seeded sample; the test split is never read); the top-4 layer states of the frozen
encoder are cached once in /tmp/alf_collapse_cache.pt. Each variant trains ALF (or the static mean) + ACH
for 5 epochs (AdamW, batch 32) and prints, per epoch, val AUPRC/AUROC, the SD of the logits across
patients, and the across-patient SD of every ALF stage (fused states, enhanced states, c_local, c_global,
output) with the mean layer weight lambda. Variants: lr 1e-3 (the collapse), no gate, no dropout, output
bias at the base rate, standardised encoder states (the fix), lr 2e-4, static mean.
"""
import sys, time, math, os
import numpy as np, pandas as pd, torch
from sklearn.metrics import average_precision_score, roc_auc_score
from alfia.models import AlfiaConfig, build_model
from alfia.models.masking import masked_mean, masked_softmax
from alfia.runtime import make_loader, set_threads, tokenize_table
set_threads(2)
CACHE = "/tmp/alf_collapse_cache.pt"
if os.path.exists(CACHE):
    Xtr, ytr, Xva, yva = torch.load(CACHE, weights_only=False)
else:
    df = pd.read_parquet(sys.argv[1])
    tr = df[df.split == "train"].sample(2000, random_state=0); va = df[df.split == "val"].sample(600, random_state=0)
    base = build_model(AlfiaConfig(finetune="frozen", max_length=384, attention_dropout=0.0)).eval()
    def cache(part):
        data = tokenize_table(part, base.tokenizer, 384)
        loader, _ = make_loader(data, 32, 0, shuffle=False)
        out = [None] * len(data)
        with torch.inference_mode():
            for b in loader:
                st = torch.stack(base.top_hidden_states(b["input_ids"], b["attention_mask"]), 2)
                for k, i in enumerate(b["index"].tolist()):
                    n = int(b["attention_mask"][k].sum()); out[i] = st[k, :n].half().clone()
        return out, data.labels.astype(np.float32)
    t = time.time(); Xtr, ytr = cache(tr); Xva, yva = cache(va); print("cache s", time.time() - t, flush=True)
    torch.save((Xtr, ytr, Xva, yva), CACHE)
STD = False
def batch(X, idx):
    T = max(X[i].shape[0] for i in idx); B = len(idx)
    s = torch.zeros(B, T, 4, 384); m = torch.zeros(B, T, dtype=torch.long)
    for k, i in enumerate(idx):
        n = X[i].shape[0]; s[k, :n] = ((X[i].float() - MU) / SIG) if STD else X[i].float(); m[k, :n] = 1
    return [s[:, :, j] for j in range(4)], m
def sd(x):  # mean over dims of the SD across patients
    return float(x.std(0).mean())
def diag(pool, layers, m):
    w = pool.layer_weights(pool.layer_summaries(layers, m))
    fused = sum(w[:, j, None, None] * layers[j] for j in range(4))
    enh = pool.norm1(fused + pool.content_projection(fused) + pool.layer_interaction(fused))
    beta = masked_softmax(pool.token_scorer(enh).squeeze(-1), m)
    c_local = torch.einsum("bt,btd->bd", beta, enh); c_global = pool.global_context(masked_mean(enh, m))
    return dict(lam=float(w.mean()), lamSD=float(w.std(0).mean()), fused=sd(masked_mean(fused, m)), enh=sd(masked_mean(enh, m)),
                loc=sd(c_local), glob=sd(c_global), betamax=float(beta.max(1).values.mean()))
ALL = torch.cat([x.float().reshape(-1, 4 * 384) for x in Xtr[:500]])
MU, SIG = ALL.mean(0).reshape(4, 384), ALL.std(0).reshape(4, 384).clamp_min(1e-2)
def run(name, pooler="alf", lr=1e-3, bias_init=False, dropout=0.1, epochs=5, gating=True, wd=0.01, std=False, warm=0):
    global STD; STD = std
    torch.manual_seed(1)
    cfg = AlfiaConfig(finetune="frozen", pooler=pooler, dropout=dropout, gating=gating)
    from alfia.models.poolers import build_pooler
    from alfia.models.attentional_classifier_head import AttentionalClassifierHead
    pool = build_pooler(cfg, 384); head = AttentionalClassifierHead(384, dropout=dropout)
    if bias_init:
        p = ytr.mean(); torch.nn.init.constant_(head.output.bias, math.log(p / (1 - p)))
    params = list(pool.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm) if warm else 1.0)
    lossf = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(0)
    def evaluate(ep):
        pool.eval(); head.eval(); L = []; E = []
        with torch.no_grad():
            for s in range(0, len(Xva), 100):
                idx = list(range(s, min(s + 100, len(Xva)))); layers, m = batch(Xva, idx)
                emb, _ = pool(layers, m); L.append(head(emb)); E.append(emb)
            layers, m = batch(Xva, list(range(200)))
            d = diag(pool, layers, m) if pooler == "alf" else {}
        L = torch.cat(L).numpy(); E = torch.cat(E)
        print(f"{name} ep{ep} auprc {average_precision_score(yva, L):.3f} auroc {roc_auc_score(yva, L):.3f} "
              f"logitSD {L.std():.4f} embSD {sd(E):.4f} " + " ".join(f"{k} {v:.4f}" for k, v in d.items()), flush=True)
    evaluate(0)
    for ep in range(epochs):
        pool.train(); head.train()
        perm = rng.permutation(len(Xtr))
        for s in range(0, len(perm), 32):
            idx = perm[s:s + 32]; layers, m = batch(Xtr, idx)
            emb, _ = pool(layers, m); logit = head(emb)
            loss = lossf(logit, torch.as_tensor(ytr[idx])); opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); sched.step()
        evaluate(ep + 1)
variants = {
    "alf": dict(), "alf_nogate": dict(gating=False), "alf_drop0": dict(dropout=0.0), "alf_bias": dict(bias_init=True),
    "alf_lr2e-4": dict(lr=2e-4), "alf_std": dict(std=True), "alf_lr5e-4_warm": dict(lr=5e-4, warm=63),
    "alf_lr1e-4": dict(lr=1e-4), "alf_std_lr2e-4": dict(std=True, lr=2e-4), "alf_std_lr5e-4_warm": dict(std=True, lr=5e-4, warm=125), "static_std": dict(pooler="static_mean", std=True), "static": dict(pooler="static_mean"), "alf_wd0": dict(wd=0.0),
}
for n in sys.argv[2].split(","):
    run(n, **variants[n])
