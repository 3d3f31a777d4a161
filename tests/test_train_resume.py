"""A training process killed with SIGKILL mid-epoch resumes to the same final weights.

This file is also the training script the test runs as a subprocess:
``python tests/test_train_resume.py RUN_DIR [--resume]``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

STEPS_PER_EPOCH, EPOCHS, CHECKPOINT_EVERY, KILL_AFTER_STEP = 12, 4, 3, 20


def train(run_dir: str, resume: bool) -> None:
    from torch import nn
    from torch.utils.data import TensorDataset

    from gmn.train import TrainConfig, Trainer, save_atomic

    g = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS_PER_EPOCH * 8, 6, generator=g)
    data = TensorDataset(x, (x[:, 0] > x[:, 1]).long())

    def slow_noise(batch, generator):  # augmentation; the sleep gives the test time to kill
        time.sleep(0.03)
        inputs, targets = batch
        return inputs + 0.1 * torch.randn(inputs.shape, generator=generator), targets

    trainer = Trainer(
        lambda: nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2)),
        data,
        TensorDataset(x[:24], data.tensors[1][:24]),
        transform=slow_noise,
        config=TrainConfig(
            run_dir=run_dir, seed=7, epochs=EPOCHS, batch_size=8, lr=1e-2, warmup_steps=5,
            checkpoint_every_steps=CHECKPOINT_EVERY, log_every_steps=1, progress=False,
            resume=resume,
        ),
    )
    trainer.fit()
    save_atomic(trainer.model.state_dict(), Path(run_dir) / "final.pt")


def logged_step(run_dir: Path) -> int:
    log = run_dir / "metrics.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return max((json.loads(line)["step"] for line in lines if line.endswith("}")), default=0)


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path):
    from gmn.train import load_checkpoint

    def launch(run_dir: Path, *flags: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, __file__, str(run_dir), *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses
    try:
        train(str(tmp_path / "ref"), resume=False)  # the uninterrupted run
    finally:
        torch.set_num_threads(threads)
    victim = launch(tmp_path / "run")
    deadline = time.monotonic() + 120
    while logged_step(tmp_path / "run") < KILL_AFTER_STEP:
        assert victim.poll() is None, victim.stderr.read().decode()
        assert time.monotonic() < deadline, "victim never reached the kill step"
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    survivor = load_checkpoint(tmp_path / "run" / "last.pt")  # readable, not corrupt
    done = survivor["progress"]
    assert not done["finished"] and done["step"] >= KILL_AFTER_STEP - CHECKPOINT_EVERY + 1

    resumed = launch(tmp_path / "run", "--resume")
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read().decode()

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_from"]["step"] == done["step"]  # finished work was not redone
    expected = load_checkpoint(tmp_path / "ref" / "final.pt")
    got = load_checkpoint(tmp_path / "run" / "final.pt")
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    epochs = [r["epoch"] for r in map(json.loads, open(tmp_path / "run" / "metrics.jsonl"))
              if r["event"] == "epoch"]
    assert epochs == list(range(1, EPOCHS + 1))


if __name__ == "__main__":
    torch.set_num_threads(1)
    train(sys.argv[1], resume="--resume" in sys.argv[2:])
