"""Trainer state that cannot be silently wrong: non-finite gradients and parameters are never
committed or checkpointed, checkpoints are verified against their record before use, and a
torn metrics log is tolerated or named."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from gmn.files import CorruptFileError, atomic_write
from gmn.train import CheckpointError, NonFiniteLossError, Trainer, load_checkpoint, save_atomic
from gmn.train.run_folder import MetricLog
from tests.test_train_trainer import config, mlp, tensor_data


class NaNGradientAt(torch.autograd.Function):
    """Identity forward; a NaN gradient on the ``step``-th backward (a finite loss)."""

    calls = 0

    @staticmethod
    def forward(ctx, x, step):
        ctx.step = step
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        NaNGradientAt.calls += 1
        return (grad * float("nan") if NaNGradientAt.calls == ctx.step else grad), None


class PoisonedMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp()

    def forward(self, x):
        return NaNGradientAt.apply(self.net(x), 7)


def test_a_nan_gradient_with_a_finite_loss_is_never_committed_or_checkpointed(tmp_path):
    NaNGradientAt.calls = 0
    trainer = Trainer(PoisonedMLP, tensor_data(96, 0), tensor_data(40, 1),
                      config=config(tmp_path, checkpoint_every_steps=1, lr=1e-2))
    with pytest.raises(NonFiniteLossError, match=r"gradient of 'net\.0\.weight'.*step 7.*"
                       r"before updating.*Last good checkpoint: .*last\.pt"):
        trainer.fit()
    assert trainer.progress.step == 6
    assert all(bool(p.isfinite().all()) for p in trainer.model.parameters())
    for name in ("last.pt", "best.pt"):
        if (tmp_path / "run" / name).exists():
            state = load_checkpoint(tmp_path / "run" / name)["model"]
            assert all(bool(v.isfinite().all()) for v in state.values()), name


def test_a_damaged_checkpoint_is_named_and_never_loaded(tmp_path):
    path = save_atomic({"w": torch.arange(1000.0)}, tmp_path / "best.pt")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a byte of tensor data: torch.load would accept it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"best\.pt: sha256 .* does not match"):
        load_checkpoint(path)
    path.write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match=r"best\.pt"):
        load_checkpoint(path)


def test_a_kill_around_the_rename_leaves_a_checkpoint_that_matches_its_record(tmp_path,
                                                                            monkeypatch):
    path = save_atomic({"w": torch.zeros(3)}, tmp_path / "last.pt")

    class Killed(BaseException):
        pass

    def die(src, dst):
        raise Killed

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(Killed):  # dies after the record says "old or new", before the rename
        save_atomic({"w": torch.ones(3)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["w"], torch.zeros(3))
    save_atomic({"w": torch.ones(3)}, path)
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(3))


def test_resuming_from_a_damaged_last_checkpoint_names_it(tmp_path):
    Trainer(mlp, tensor_data(64, 0), tensor_data(32, 1), config=config(tmp_path, epochs=1)).fit()
    last = tmp_path / "run" / "last.pt"
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    trainer = Trainer(mlp, tensor_data(64, 0), tensor_data(32, 1),
                      config=config(tmp_path, epochs=1, resume=True))
    with pytest.raises(CheckpointError, match=r"run/last\.pt"):
        trainer.fit()


def test_a_torn_last_metrics_line_is_dropped_and_a_damaged_one_named(tmp_path):
    log = MetricLog(tmp_path, tensorboard=False)
    log.write({"step": 1, "loss": 0.5})
    log.write({"step": 2, "loss": 0.4})
    with open(log.path, "a") as handle:
        handle.write('{"step": 3, "lo')  # ENOSPC mid-append
    with pytest.warns(UserWarning, match="torn last line"):
        assert [r["step"] for r in log.read()] == [1, 2]
    with pytest.warns(UserWarning):
        log.truncate_after(2)
    assert log.path.read_text().endswith('"loss": 0.4}\n')
    atomic_write(log.path, lambda tmp: tmp.write_text('{"step": 1}\n{"ste\n{"step": 2}\n'))
    with pytest.raises(CorruptFileError, match=r"metrics\.jsonl line 2 is not JSON"):
        log.read()


def test_temporaries_of_a_killed_run_are_removed_and_files_are_0644(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".summary.json.4242.tmp").write_text('{"status": "half')  # ENOSPC mid-write
    (run / ".last.pt.4242.tmp").write_bytes(b"PK")
    old = os.umask(0o022)
    try:
        Trainer(mlp, tensor_data(32, 0), tensor_data(16, 1), config=config(tmp_path, epochs=1)
                ).fit()
    finally:
        os.umask(old)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    for name in ("last.pt", "best.pt", "summary.json", "config.json", "checkpoints.json"):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name
