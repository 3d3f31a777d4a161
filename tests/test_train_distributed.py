"""Two gloo processes on loopback (``torchrun --standalone --nproc_per_node=2``) train a
small GMN to the same weights as one process with the combined batch, evaluate every
validation sample exactly once, and gather per-sample results and CKA state in input order.

This file is also the script torchrun runs: ``tests/test_train_distributed.py OUT_DIR``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` when run by torchrun

from gmn.testing import make_siren  # noqa: E402

NUM_TRAIN, NUM_EVAL, PER_RANK_BATCH, STEPS = 24, 7, 4, 3


class ParamsToGMN(nn.Module):
    """[B, P] flat SIREN parameters -> graphs (GraphTemplate) -> GMN -> [B, 3] logits."""

    def __init__(self, template, train_params: Tensor):
        super().__init__()
        from gmn.nn import GMN

        self.template = template
        # no dropout: two ranks draw other masks than one process over the combined batch
        self.gmn = GMN(out_dim=3, hidden_dim=16, num_layers=2, dropout=0.0)
        self.gmn.fit_feature_statistics(template.batch(train_params))

    def forward(self, params: Tensor) -> Tensor:
        return self.gmn(self.template.batch(params))


def siren_data() -> tuple[object, TensorDataset, TensorDataset]:
    from gmn import GraphTemplate

    template = GraphTemplate.from_module(make_siren(0, hidden=(8, 8)))
    params = torch.stack(
        [template.flatten(make_siren(s, hidden=(8, 8)).state_dict()) for s in range(NUM_TRAIN)]
    )
    labels = torch.arange(NUM_TRAIN) % 3
    train = TensorDataset(params, labels)
    evaluation = TensorDataset(params[:NUM_EVAL] * 1.5, labels[:NUM_EVAL])
    return template, train, evaluation


def train(run_dir: str, batch_size: int):
    from gmn.train import TrainConfig, Trainer

    template, train_set, eval_set = siren_data()
    trainer = Trainer(
        lambda: ParamsToGMN(template, train_set.tensors[0]),
        train_set,
        eval_set,
        eval_set,
        config=TrainConfig(
            run_dir=run_dir, seed=3, max_steps=STEPS, batch_size=batch_size, lr=1e-2,
            warmup_steps=1, eval_batch_size=2, progress=False,
        ),
    )
    trainer.fit()
    return trainer, eval_set


def probe_states(model: ParamsToGMN, batches) -> dict[str, Tensor]:
    """GMN layer states (``gmn.probe``) and logits of ``(params, label)`` batches, in order."""
    import gmn

    def forward(_, batch):
        probe_states.logits.append(model(batch[0]))

    probe_states.logits = []
    with gmn.probe(model.gmn) as recorder:
        states = [{**recorder.run(b, forward), "logits": probe_states.logits[-1]} for b in batches]
    return {key: torch.cat([s[key] for s in states]) for key in states[0]}


def worker(out_dir: str) -> None:
    """One rank: train; probe its shard of the eval set, gather in order; all-reduce CKA."""
    import torch.distributed as dist

    from gmn.cka import CKAGrid
    from gmn.train import map_in_order, save_atomic, shutdown

    trainer, eval_set = train(str(Path(out_dir) / "run"), PER_RANK_BATCH)
    model = trainer.model.eval()
    with torch.no_grad():
        hidden = map_in_order(lambda batch: probe_states(model, [batch]), eval_set, 3)
        shard = range(dist.get_rank(), NUM_EVAL, dist.get_world_size())
        local = probe_states(model, [eval_set[i : i + 1] for i in shard])
    grid = CKAGrid().update({"x": local["layers.0/node_mean"]}, {"y": local["logits"]})
    grid.all_reduce()
    if dist.get_rank() == 0:
        save_atomic(
            {
                "weights": model.state_dict(),
                "test": trainer.test_result,
                "hidden": hidden,
                "cka": grid.compute().values[0, 0],
                "world_size": dist.get_world_size(),
            },
            Path(out_dir) / "rank0.pt",
        )
    shutdown()


def test_two_gloo_processes_match_one_process_with_the_combined_batch(tmp_path):
    from gmn.cka import cka
    from gmn.train import load_checkpoint

    launch = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         __file__, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        output, _ = launch.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(launch.pid, signal.SIGKILL)  # torchrun and its workers
        raise
    assert launch.returncode == 0, output[-4000:]
    ddp = load_checkpoint(tmp_path / "rank0.pt")
    assert ddp["world_size"] == 2

    single, eval_set = train(str(tmp_path / "single"), 2 * PER_RANK_BATCH)
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp["weights"][key], value, rtol=1e-4, atol=1e-5, msg=key)

    # every test sample counted once (7 samples over 2 ranks: no padding duplicate)
    test = single.test_result
    assert abs(ddp["test"]["loss"] - test["loss"]) < 1e-5
    assert ddp["test"]["accuracy"] == test["accuracy"]
    torch.testing.assert_close(ddp["test"]["outputs"], test["outputs"], rtol=1e-4, atol=1e-5)

    with torch.no_grad():  # one process probes the whole set in one batch
        states = probe_states(single.model.eval(), [eval_set.tensors])
    assert set(ddp["hidden"]) == set(states) and "layers.1/node_mean" in states
    for key, value in states.items():
        torch.testing.assert_close(ddp["hidden"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    expected = cka(states["layers.0/node_mean"], states["logits"])
    torch.testing.assert_close(ddp["cka"], expected, rtol=1e-4, atol=1e-6)


if __name__ == "__main__":
    torch.set_num_threads(1)
    worker(sys.argv[1])
