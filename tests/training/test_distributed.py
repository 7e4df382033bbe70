"""Data-parallel training with torch.distributed: `alfia train --nproc 2` (torchrun, gloo, 2 CPU processes) on a
tiny BERT equals one process with the same global batch; the sharded sampler loses and repeats no row; a finished or
killed 2-process run resumed with --nproc 2 reaches the uninterrupted run, head phase included."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.runs import read_predictions
from alfia.runtime.batches import LengthBucketedBatchSampler
from alfia.training.distributed import ShardedBatchSampler, World, rank_callbacks

from .conftest import make_text_frame, write_text_table

# Same global batch: 2 processes x 8 rows against 1 x 16. Without dropout the two runs do the same arithmetic but
# for the order of the gradient sums (gloo's all-reduce) and each rank's padding, so losses, AUPRC and probabilities
# agree to float32 rounding (measured: <= 1e-6 with no dropout; BERT's hidden dropout alone made it 1e-4).
TOLERANCE = 1e-4
PER_PROCESS_BATCH = 8


@pytest.mark.parametrize("n,batch,size,rows_per_epoch", [(57, 8, 2, None), (50, 4, 3, None), (57, 8, 2, 20),
                                                         (5, 4, 2, None)])
def test_every_row_once_per_epoch_across_ranks(n, batch, size, rows_per_epoch):
    lengths = np.random.default_rng(0).integers(5, 60, n)
    for epoch in range(3):
        global_sampler = LengthBucketedBatchSampler(lengths, batch * size, bucket_size=2, seed=7,
                                                    rows_per_epoch=rows_per_epoch)
        global_sampler.set_epoch(epoch)
        expected = sorted(i for b in global_sampler.batches() for i in b)
        seen, steps = [], set()
        for rank in range(size):
            sampler = ShardedBatchSampler(global_sampler, World(rank, size, rank, size))
            sampler.set_epoch(epoch)
            batches = list(sampler)
            steps.add(len(batches))
            assert len(batches) == len(sampler)
            seen += [i for b in batches for i in b if i >= 0]  # -(i + 1): a weight-0 stand-in, not a row seen
            assert all(len(b) <= batch for b in batches)
        assert steps == {len(global_sampler)}  # every rank runs every step (DDP all-reduces each one)
        assert sorted(seen) == expected  # no row lost, none twice
        assert len(expected) == (rows_per_epoch or n)


def test_only_rank_zero_runs_the_writing_callbacks(tmp_path):
    from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory

    callbacks = [EarlyStopping(2), JsonlHistory(tmp_path / "h.jsonl"), Checkpointing(tmp_path / "c", fingerprint={"data": "0"})]
    assert rank_callbacks(callbacks, World(0, 2, 0, 2)) == callbacks
    assert [type(c) for c in rank_callbacks(callbacks, World(1, 2, 1, 2))] == [EarlyStopping]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _alfia(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alfia", *map(str, args)], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=900)


def _history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_backbone_dir):
    """(2-process run, 1-process run, text table, n train rows): the same recipe, the same global batch."""
    from alfia.training import TrainConfig, train_run
    from alfia.training.run import configs_from

    root = tmp_path_factory.mktemp("ddp")
    # No dropout anywhere (ALF, ACH, and the encoder layer that trains: BERT's hidden dropout), so both runs draw no
    # random masks and do the same arithmetic.
    backbone = tmp_path_factory.mktemp("backbone") / "tiny-bert-no-dropout"  # outside root: root holds runs only
    shutil.copytree(tiny_backbone_dir, backbone)
    bert = json.loads((backbone / "config.json").read_text())
    (backbone / "config.json").write_text(json.dumps({**bert, "hidden_dropout_prob": 0.0}))
    df = make_text_frame(96, seed=3)
    text = write_text_table(df, root / "text.parquet")
    config = {"model": {"backbone": str(backbone), "n_fusion_layers": 2, "fusion_heads": 2, "classifier_heads": 2,
                        "train_layers": 1, "finetune": "full", "max_length": 32, "dropout": 0.0,
                        "attention_dropout": 0.0},
              "train": {"epochs": 2, "head_epochs": 1, "rows_per_epoch": None, "lr": 1e-3, "head_lr": 1e-3,
                        "eval_batch_size": 32, "num_threads": 1, "seed": 5}}
    (root / "config.json").write_text(json.dumps(config))
    out = _alfia("train", text, "--out", root / "ddp", "--config", root / "config.json",
                 "--batch-size", PER_PROCESS_BATCH, "--nproc", 2, "--keep-checkpoint", cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    _, model_config, train_config, _ = configs_from(root / "config.json", text, {}, {})
    train_run(text, root / "single", model_config, TrainConfig.from_dict(
        {**train_config.to_dict(), "batch_size": 2 * PER_PROCESS_BATCH}), progress=False)
    return root / "ddp", root / "single", text, int((df["split"] == "train").sum())


def _assert_same_epochs(history: list[dict], reference: list[dict]) -> None:
    assert len(history) == len(reference)
    for a, b in zip(history, reference):
        assert a.get("phase") == b.get("phase")
        for key in ("train_loss", "val_loss", "val_auprc", "val_auroc"):
            assert abs(a[key] - b[key]) < TOLERANCE, (key, a, b)


def test_two_processes_write_one_run_that_matches_one_process(runs):
    ddp, single, text, n_train = runs
    assert sorted(p.name for p in ddp.parent.iterdir() if p.is_dir() and p.name != "single") == ["ddp"]
    config = json.loads((ddp / "config.json").read_text())
    assert config["distributed"] == {"world_size": 2, "backend": "gloo", "batch_size_per_process": PER_PROCESS_BATCH,
                                     "global_batch": 2 * PER_PROCESS_BATCH}
    history = _history(ddp)
    assert [r["phase"] for r in history] == ["head", "joint", "joint"]
    assert all(r["train_rows"] == n_train for r in history)  # every training row once per epoch, over both ranks
    _assert_same_epochs(history, _history(single))
    p_ddp = read_predictions(ddp / "predictions.parquet").set_index("stay_id")["prob"]
    p_single = read_predictions(single / "predictions.parquet").set_index("stay_id")["prob"]
    assert np.abs(p_ddp - p_single.reindex(p_ddp.index)).max() < TOLERANCE
    assert (ddp / "checkpoint").is_dir() and (ddp / "thresholds.json").is_file()


def test_resume_continues_in_as_many_processes(runs):
    ddp, _, text, _ = runs
    before = read_predictions(ddp / "predictions.parquet")
    (ddp / "predictions.parquet").unlink()  # as if stopped after its last checkpoint
    out = _alfia("train", "--resume", ddp, "--nproc", 1, cwd=ddp.parent)
    assert out.returncode == 2 and "trained with 2 process(es); resume it with the same number" in out.stderr
    out = _alfia("train", "--resume", ddp, "--nproc", 2, cwd=ddp.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    after = read_predictions(ddp / "predictions.parquet")
    pd.testing.assert_frame_equal(before, after, atol=TOLERANCE)
    assert [r["phase"] for r in _history(ddp)] == ["head", "joint", "joint"]  # the head phase's record is kept


# The fixture's 2-process run, killed (kill -9 of torchrun and of rank 0; rank 1 fails at its next collective) after
# the third of the four batches of its second joint epoch: the checkpoint on disk is the first joint epoch's.
_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from alfia.training import Callback, TrainConfig, train_run
    from alfia.training.run import configs_from

    class KillJob(Callback):
        def on_batch_end(self, state):
            if (state.epoch, state.step_in_epoch) == (1, 3):  # the head phase has one epoch: this is the joint one
                os.kill(os.getppid(), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)

    config, text, out, batch = sys.argv[1:]
    _, model_config, train_config, _ = configs_from(config, text, {}, {})
    train_config = TrainConfig.from_dict({**train_config.to_dict(), "batch_size": int(batch)})
    train_run(text, out, model_config, train_config, progress=False, callbacks=[KillJob()])
""")


def test_a_killed_run_resumes_to_the_uninterrupted_one(runs, tmp_path):
    ddp, single, text, _ = runs  # single: the reference no other test rewrites (that ddp matches it is tested above)
    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    run = tmp_path / "killed"
    args = [script, ddp.parent / "config.json", text, run, PER_PROCESS_BATCH]
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          *map(str, args)], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert (state["epoch"], state["step_in_epoch"]) == (1, 0)  # the first joint epoch's checkpoint
    assert [r["phase"] for r in _history(run)] == ["head", "joint"] and not (run / "predictions.parquet").exists()

    out = _alfia("train", "--resume", run, "--nproc", 2, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    _assert_same_epochs(_history(run), _history(single))
    p_single = read_predictions(single / "predictions.parquet").set_index("stay_id")["prob"]
    p_resumed = read_predictions(run / "predictions.parquet").set_index("stay_id")["prob"]
    assert np.abs(p_resumed - p_single.reindex(p_resumed.index)).max() < TOLERANCE
    assert not (run / "checkpoint").exists()  # pruned once the resumed run finished
