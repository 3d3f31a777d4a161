"""Trainer state that cannot be silently wrong: non-finite gradients and parameters are never
committed or checkpointed, checkpoints verify themselves before use (no other record needed),
a resume with other settings or without its best checkpoint is refused, two trainers never
share a folder, and a torn metrics log is tolerated or named."""

from __future__ import annotations

import multiprocessing
import os

import pytest
import torch
from torch import nn

from gmn.files import CorruptFileError, FolderLockedError, atomic_write, folder_lock
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


def test_a_damaged_checkpoint_is_named_and_never_loaded_with_no_other_record(tmp_path):
    path = save_atomic({"w": torch.arange(1000.0), "epoch": 3}, tmp_path / "best.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no index to lose
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a byte of tensor data: torch.load would accept it
    path.write_bytes(bytes(data))
    assert not torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(1000.0))
    with pytest.raises(CheckpointError, match=r"best\.pt: its content does not match"):
        load_checkpoint(path)
    path.write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match=r"best\.pt"):
        load_checkpoint(path)


def test_a_checkpoint_without_its_digest_is_refused(tmp_path):
    torch.save({"w": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"foreign\.pt carries no content_sha256"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_a_kill_around_the_rename_leaves_the_old_verified_checkpoint(tmp_path, monkeypatch):
    path = save_atomic({"w": torch.zeros(3)}, tmp_path / "last.pt")

    class Killed(BaseException):
        pass

    def die(src, dst):
        raise Killed

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(Killed):  # dies after writing the temporary, before the rename
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
    for name in ("last.pt", "best.pt", "summary.json", "config.json"):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name


def test_resuming_with_another_run_key_is_refused_naming_it_first(tmp_path):
    """The run key (model, loss and data options outside TrainConfig) decides the run: a
    change is refused, and named rather than the settings derived from it."""
    key = {"model": {"dropout": 0.2}, "data": {"split": [0.7, 0.1, 0.2]}}
    data = (tensor_data(64, 0), tensor_data(32, 1))
    Trainer(mlp, *data, config=config(tmp_path, epochs=1, run_key=key)).fit()
    cases = [({**key, "model": {"dropout": 0.1}}, r"run_key\.model\.dropout: 0\.2 -> 0\.1"),
             ({**key, "data": {"split": [0.5, 0.25, 0.25]}}, r"run_key\.data\.split")]
    for changed, named in cases:
        resumed = Trainer(mlp, *data, config=config(tmp_path, epochs=2, run_key=changed,
                                                    warmup_steps=3, resume=True))
        with pytest.raises(ValueError, match=named) as refused:
            resumed.fit()
        assert "warmup_steps" not in str(refused.value)
    unchanged = Trainer(mlp, *data, config=config(tmp_path, epochs=1, run_key=key, resume=True))
    assert unchanged.fit()["resumed_from"]["epoch"] == 1


def test_resuming_without_the_best_checkpoint_is_refused_naming_it(tmp_path):
    data = (tensor_data(64, 0), tensor_data(32, 1))
    Trainer(mlp, *data, config=config(tmp_path, epochs=1)).fit()
    (tmp_path / "run" / "best.pt").unlink()
    with pytest.raises(CheckpointError, match=r"run/best\.pt is missing"):
        Trainer(mlp, *data, config=config(tmp_path, epochs=1, resume=True)).fit()


def _hold_lock(folder, ready, release):
    with folder_lock(folder, command="python other_training.py"):
        ready.set()
        release.wait(60)


def test_a_second_trainer_on_a_locked_run_folder_is_refused_naming_the_holder(tmp_path):
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(tmp_path / "run", ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        trainer = Trainer(mlp, tensor_data(32, 0), config=config(tmp_path, epochs=1))
        with pytest.raises(FolderLockedError, match=rf"pid {holder.pid} on .*python "
                                                    r"other_training\.py"):
            trainer.fit()
        assert not any((tmp_path / "run" / name).exists()  # nothing written
                       for name in ("metrics.jsonl", "summary.json", "config.json"))
    finally:
        release.set()
        holder.join()
    assert trainer.fit()["status"] == "completed"  # a killed or finished holder frees it
