"""Trainer behaviour on tensor and graph data: reproducibility, best checkpoint,
early stopping, outputs in input order, NaN stop, resume, precision."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch_geometric.data import Data
from torch_geometric.nn import global_mean_pool

from gmn.files import read_json
from gmn.train import NonFiniteLossError, TrainConfig, Trainer, load_checkpoint


def tensor_data(n: int, seed: int, flip: bool = False) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return TensorDataset(x, 1 - y if flip else y)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def config(tmp_path, name="run", **overrides) -> TrainConfig:
    settings = dict(run_dir=str(tmp_path / name), epochs=3, batch_size=16, lr=1e-2, progress=False)
    return TrainConfig(**{**settings, **overrides})


def noise(batch, generator):
    x, y = batch
    return x + 0.1 * torch.randn(x.shape, generator=generator, device=x.device), y


def weights(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_same_seed_gives_identical_runs_and_another_seed_does_not(tmp_path):
    runs = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        trainer = Trainer(
            mlp, tensor_data(96, 0), tensor_data(40, 1),
            config=config(tmp_path, name, seed=seed), transform=noise,
        )
        summary = trainer.fit()
        runs.append((weights(trainer.model), summary["best_val_loss"]))
    assert_same_weights(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert not torch.equal(runs[0][0]["0.weight"], runs[2][0]["0.weight"])


def test_dataloader_order_is_replaced_by_the_seeded_order(tmp_path):
    data = tensor_data(96, 0)
    shuffled = DataLoader(data, batch_size=16, shuffle=True)
    a = Trainer(mlp, shuffled, config=config(tmp_path, "a", seed=4))
    b = Trainer(mlp, data, config=config(tmp_path, "b", seed=4))
    a.fit(), b.fit()
    assert_same_weights(weights(a.model), weights(b.model))


def test_best_checkpoint_is_reloaded_before_one_test_and_early_stopping(tmp_path):
    # validation labels are the opposite of the training labels: validation loss rises
    # as training succeeds, so epoch 1 is the best and patience 2 stops after epoch 3
    trainer = Trainer(
        mlp, tensor_data(96, 0), tensor_data(40, 1, flip=True), tensor_data(30, 2),
        config=config(tmp_path, epochs=10, patience=2, lr=3e-2),
    )
    summary = trainer.fit()
    assert summary["best_epoch"] == 1 and summary["epochs_completed"] == 3
    assert summary["stopped_early"] and summary["status"] == "completed"
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert_same_weights(weights(trainer.model), best["model"])
    assert not torch.equal(best["model"]["0.weight"], last["model"]["0.weight"])
    assert trainer.evaluate(tensor_data(30, 2))["loss"] == summary["test"]["loss"]
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["event"] for r in records if r["event"] in ("epoch", "test")] == [
        "epoch", "epoch", "epoch", "test"
    ]
    # written by gmn.files.write_json: read back whole, checked against its content hash
    assert read_json(tmp_path / "run" / "summary.json") == json.loads(json.dumps(summary))


def test_evaluation_outputs_are_in_input_order_for_graph_batches(tmp_path):
    class GraphClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 4)

        def forward(self, batch):
            return global_mean_pool(self.lin(batch.x), batch.batch)

    g = torch.Generator().manual_seed(0)
    graphs = [
        Data(x=torch.randn(int(n), 3, generator=g), y=torch.tensor([i % 4]))
        for i, n in enumerate(torch.randint(2, 6, (23,), generator=g))
    ]
    trainer = Trainer(
        GraphClassifier, graphs[:16], test=graphs,
        config=config(tmp_path, batch_size=5, eval_batch_size=4),
    )
    trainer.fit()
    result = trainer.test_result
    with torch.no_grad():
        direct = torch.stack([trainer.model.lin(d.x).mean(0) for d in graphs])
    torch.testing.assert_close(result["outputs"], direct)
    assert torch.equal(result["predictions"], direct.argmax(-1))
    truth = torch.cat([d.y for d in graphs])
    assert result["accuracy"] == pytest.approx((direct.argmax(-1) == truth).float().mean().item())
    assert result["probabilities"].sum(-1).sub(1).abs().max() < 1e-6


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison_at_step_9(batch, generator):
        x, y = batch
        poison_at_step_9.calls += 1
        return (x * float("nan"), y) if poison_at_step_9.calls == 9 else (x, y)

    poison_at_step_9.calls = 0
    trainer = Trainer(
        mlp, tensor_data(96, 0), tensor_data(40, 1), transform=poison_at_step_9,
        config=config(tmp_path, checkpoint_every_steps=4),
    )
    with pytest.raises(NonFiniteLossError, match=r"step 9 \(epoch 2, batch 3\)"):
        trainer.fit()
    kept = load_checkpoint(tmp_path / "run" / "last.pt")
    assert kept["progress"]["step"] == 8
    assert all(torch.isfinite(v).all() for v in kept["model"].values())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"].startswith("failed: NonFiniteLossError")


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path):
    reference = Trainer(
        mlp, tensor_data(96, 0), tensor_data(40, 1), transform=noise,
        config=config(tmp_path, "ref", checkpoint_every_steps=4),
    )
    reference.fit()

    def crash_at_step_11(batch, generator):
        crash_at_step_11.calls += 1
        if crash_at_step_11.calls == 11:
            raise KeyboardInterrupt
        return noise(batch, generator)

    crash_at_step_11.calls = 0
    crashed = Trainer(
        mlp, tensor_data(96, 0), tensor_data(40, 1), transform=crash_at_step_11,
        config=config(tmp_path, "run", checkpoint_every_steps=4),
    )
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    resumed = Trainer(
        mlp, tensor_data(96, 0), tensor_data(40, 1), transform=noise,
        config=config(tmp_path, "run", checkpoint_every_steps=4, resume=True),
    )
    summary = resumed.fit()
    assert summary["resumed_from"] == {"epoch": 1, "batch_in_epoch": 2, "step": 8}
    assert_same_weights(weights(resumed.model), weights(reference.model))
    assert summary["best_val_loss"] == reference.summary["best_val_loss"]
    epochs = [
        json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")
        if '"epoch"' in line
    ]
    ref_epochs = [
        json.loads(line) for line in open(tmp_path / "ref" / "metrics.jsonl")
        if '"epoch"' in line
    ]
    assert [e["train_loss"] for e in epochs] == [e["train_loss"] for e in ref_epochs]


def test_a_model_built_in_eval_mode_trains_with_dropout_and_resumes_exactly(tmp_path):
    """Dropout is on from the first step even when the factory returns an eval-mode model,
    so a run resumed from an end-of-epoch checkpoint matches the uninterrupted one."""
    masks = []

    def eval_mode_mlp():
        model = mlp().eval()
        model[2].register_forward_hook(
            lambda module, args, out: masks.append(bool(module.training))
        )
        return model

    def crash_at_step_7(batch, generator):
        crash_at_step_7.calls += 1
        if crash_at_step_7.calls == 7:
            raise KeyboardInterrupt
        return noise(batch, generator)

    data = (tensor_data(96, 0), tensor_data(40, 1))
    reference = Trainer(eval_mode_mlp, *data, transform=noise, config=config(tmp_path, "ref"))
    reference.fit()
    steps = reference.progress.step
    assert all(masks[:steps // reference.epochs]), "the first epoch trained without dropout"
    crash_at_step_7.calls = 0
    with pytest.raises(KeyboardInterrupt):
        Trainer(eval_mode_mlp, *data, transform=crash_at_step_7, config=config(tmp_path)).fit()
    resumed = Trainer(eval_mode_mlp, *data, transform=noise,
                      config=config(tmp_path, resume=True))
    resumed.fit()
    assert resumed.summary["resumed_from"]["step"] == 6
    assert_same_weights(weights(resumed.model), weights(reference.model))


def test_resume_refuses_a_changed_config(tmp_path):
    Trainer(mlp, tensor_data(32, 0), config=config(tmp_path, epochs=1)).fit()
    changed = Trainer(mlp, tensor_data(32, 0), config=config(tmp_path, epochs=1, resume=True,
                                                               lr=0.5))
    with pytest.raises(ValueError, match=r"lr: 0.01 -> 0.5"):
        changed.fit()


def test_max_steps_stops_mid_epoch(tmp_path):
    summary = Trainer(mlp, tensor_data(96, 0), config=config(tmp_path, max_steps=4)).fit()
    assert summary["steps"] == 4 and summary["epochs_completed"] == 1


def test_bf16_autocast_runs_the_forward_in_bf16(tmp_path):
    seen = []
    model = mlp()
    model[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    summary = Trainer(
        model, tensor_data(32, 0), config=config(tmp_path, epochs=1, precision="bf16")
    ).fit()
    assert seen and set(seen) == {torch.bfloat16}
    assert summary["precision"] == "bf16" and summary["status"] == "completed"


def test_the_example_in_docs_train_md_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "train.md").read_text()
    example = re.search(r"## Example\n\n```python\n(.*?)```", doc, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "docs/train.md", "exec"), namespace)
    assert namespace["summary"]["status"] == "completed"
    assert namespace["trainer"].test_result["probabilities"].shape == (170, 2)
    assert (tmp_path / "runs" / "demo" / "summary.json").exists()


def test_console_says_where_a_run_resumes_and_prints_the_summary_only_when_asked(tmp_path,
                                                                                 capsys):
    def stop_at_step_8(batch, generator):
        stop_at_step_8.calls += 1
        if stop_at_step_8.calls == 8:  # 6 steps per epoch: inside epoch 2, after batch 1
            raise KeyboardInterrupt
        return batch

    stop_at_step_8.calls = 0
    quiet = config(tmp_path, print_summary=False, checkpoint_every_steps=1)
    with pytest.raises(KeyboardInterrupt):
        Trainer(mlp, tensor_data(96, 0), tensor_data(40, 1), config=quiet,
                transform=stop_at_step_8).fit()
    assert capsys.readouterr().out == ""  # no progress bars, no summary
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"].startswith(
        "failed: KeyboardInterrupt")  # saved all the same
    resumed = config(tmp_path, resume=True, checkpoint_every_steps=1)
    Trainer(mlp, tensor_data(96, 0), tensor_data(40, 1), config=resumed).fit()
    printed = capsys.readouterr().out
    assert printed.startswith(
        f"resuming from epoch 1/3, batch 1 (step 7) of {tmp_path / 'run' / 'last.pt'}\n")
    assert "training summary:" in printed
