"""The benchmark's CKA stage streams: on a tiny real run its numbers equal the in-memory
computation on the collected test-set states, its permutation tests see only the first
``--cka-permutation-samples`` samples, and what it holds does not grow with the test set."""

import dataclasses
import json
import weakref
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.data import DataLoader

from benchmarks.inr_classification.analysis import best_match_mean, same_layer_mean
from benchmarks.inr_classification.cli import main, parse_config
from benchmarks.inr_classification.config import BenchmarkConfig
from benchmarks.inr_classification.data import prepare_data
from benchmarks.inr_classification.similarity import cka_study
from benchmarks.inr_classification.training import trained_model
from gmn.cka import cka_matrix, procrustes_similarity
from gmn.files import read_json, write_json
from tests.benchmark_models import in_memory, trained

TINY = [
    "--classes", "0,1", "--limit", "100", "--inr-steps", "20", "--epochs", "2", "--seeds", "2",
    "--families", "gmn,mlp,cnn,weight_mlp", "--batch-size", "16", "--cka-permutations", "20",
    "--gmn-config", '{"hidden_dim": 8, "num_layers": 2, "batch_size": 16, "lr": 0.005}',
    "--procrustes", "--no-progress", "--threads", "1",
]  # fmt: skip
FEW = 12  # --cka-permutation-samples of the second run, below the 20 test samples


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny run, then its CKA stage again with ``--cka-permutation-samples FEW`` (the runs
    are reused), and every trained model's test-set states collected in memory."""
    out = tmp_path_factory.mktemp("cka-stream")
    results = main([*TINY, "--out", str(out)])
    few = main([*TINY, "--out", str(out), "--cka-permutation-samples", str(FEW)])
    config = parse_config([*TINY, "--out", str(out)])
    data = prepare_data(config, out)
    states, predictions = {}, {}
    for family, runs in results["runs"].items():
        for seed, result in zip(config.seed_list, runs):
            run_dir = out / "runs" / family / f"seed{seed}"
            model = trained_model(family, data, config, run_dir, result)
            states.setdefault(family, []).append(in_memory(model))
            with torch.no_grad():
                logits = torch.cat([model.model(x) for x, _ in DataLoader(model.test, 64)])
            predictions[family, seed] = logits
    return out, results, few, states, predictions


def each_pair(cka: dict):
    for kind in ("within", "between"):
        for name, group in cka[kind].items():
            a, b = (name, name) if kind == "within" else name.split("-")
            for k, pair in enumerate(group["pairs"]):
                yield a, int(pair["a"][len(a):]), b, int(pair["b"][len(b):]), k, pair


def test_models_read_back_are_the_tested_ones(run):
    out, results, _, _, logits = run
    from safetensors.torch import load_file

    for (family, seed), values in logits.items():
        stored = load_file(str(out / "runs" / family / f"seed{seed}" / "outputs.safetensors"))
        assert set(stored) == {"probabilities", "predictions"}  # no probed states on disk
        assert torch.equal(values.argmax(1), stored["predictions"])
        torch.testing.assert_close(values.softmax(1), stored["probabilities"], rtol=0, atol=1e-6)


def test_streamed_matrices_and_headlines_equal_the_in_memory_ones(run):
    _, results, _, states, _ = run
    cka, procrustes = results["cka"], results["procrustes"]
    for a, i, b, j, _, pair in each_pair(cka):
        x = {k: v.double() for k, v in states[a][i].items()}
        y = {k: v.double() for k, v in states[b][j].items()}
        assert pair["rows"] == list(x) and pair["cols"] == list(y)  # model order
        for debiased, kind in ((True, "debiased"), (False, "biased")):
            reference = cka_matrix(x, y, debiased=debiased).values
            torch.testing.assert_close(
                torch.tensor(pair[kind], dtype=torch.float64), reference, rtol=0, atol=1e-9
            )
            headline = (
                same_layer_mean(reference, list(x), list(y)) if a == b else
                best_match_mean(reference)
            )
            assert pair[f"headline_{kind}"] == pytest.approx(headline, abs=1e-9)
        same = [[float(procrustes_similarity(x[r], y[c])) for c in y] for r in x]
        torch.testing.assert_close(torch.tensor(pair["procrustes"], dtype=torch.float64),
                                   torch.tensor(same, dtype=torch.float64), rtol=0, atol=1e-9)
    for kind in ("within", "between"):
        for name, group in cka[kind].items():
            values = [p["headline_procrustes"] for p in group["pairs"]]
            assert procrustes[kind][name]["values"] == values


def test_p_values_are_the_in_memory_permutation_tests(run):
    """On every sample (the default bound exceeds the test set) and on the first FEW."""
    _, results, few, states, _ = run
    n_test = results["data"]["n_test"]
    assert FEW < n_test < BenchmarkConfig.cka_permutation_samples
    for cka, n in ((results["cka"], n_test), (few["cka"], FEW)):
        tested = 0
        for a, i, b, j, k, pair in each_pair(cka):
            if k > 0:
                assert "p_values" not in pair
                continue
            x = {name: v[:n] for name, v in states[a][i].items()}
            y = {name: v[:n] for name, v in states[b][j].items()}
            reference = cka_matrix(x, y, debiased=True, permutations=20, seed=0)
            assert pair["p_values"] == reference.p_values.tolist()
            assert pair["baseline"] == reference.baseline.tolist()
            tested += 1
        assert tested == len(cka["within"]) + len(cka["between"])
    assert f"first {FEW} of {n_test} test samples" in few["cka"]["statistic"]
    assert "test samples" not in results["cka"]["statistic"]
    for (*_, first), (*_, second) in zip(each_pair(results["cka"]), each_pair(few["cka"])):
        assert first["debiased"] == second["debiased"]  # headlines use every sample still


def test_runs_cached_with_retired_keys_are_reused(run):
    """probe_samples (before the CKA stage streamed) and the typed gmn_config (before a run's
    key held only what decides it) in the records of earlier versions."""
    out = run[0]
    argv = [*TINY, "--out", str(out), "--cka-permutation-samples", str(FEW)]
    watched = [out / "cka.json"]
    typed = json.loads(TINY[TINY.index("--gmn-config") + 1])
    for family, retired in (("gmn", {"probe_samples": None}), ("mlp", {"gmn_config": typed})):
        result_file = out / "runs" / family / "seed1" / "result.json"
        record = read_json(result_file)
        record["key"].update(retired)
        write_json(record, result_file)
        watched += [result_file.parent / "best.pt", result_file.parent / "outputs.safetensors"]
    stamps = [path.stat().st_mtime_ns for path in watched]
    main(argv)
    assert [path.stat().st_mtime_ns for path in watched] == stamps  # nothing trained or redone
    with pytest.raises(SystemExit):
        parse_config([*argv, "--probe-samples", "5"])


class LiveBytes(TorchDispatchMode):
    """Bytes of the tensors allocated by ops while the mode is on that are still alive (a
    storage counted once, whatever its views): ``peak`` is the largest total."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.storages: dict[int, list[int]] = {}  # data_ptr -> [tensors alive, bytes]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        given = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                 if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor, given)
        return out

    def _track(self, tensor: torch.Tensor, given: set[int]) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self.storages:
            self.storages[key][0] += 1
        elif key in given or storage.nbytes() == 0:
            return  # a view or in-place result of a tensor allocated before the mode
        else:
            self.storages[key] = [1, storage.nbytes()]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.storages[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.storages[key]


def peak_bytes(work) -> int:
    with LiveBytes() as meter:
        work()
    return meter.peak


def test_cka_stage_memory_does_not_grow_with_the_test_set():
    config = dataclasses.replace(BenchmarkConfig(), cka_permutations=10,
                                 cka_permutation_samples=40, procrustes=True, progress=False)

    def stage(n: int):
        models = {"a": [trained(0, n), trained(1, n)],
                  "b": [trained(2, n, width=20), trained(3, n, width=20)]}
        return lambda: cka_study(models, config)

    def collected(n: int):  # the old way: every state of every sample at once
        return lambda: in_memory(trained(0, n))

    # 4 and 13 batches of 256: both have two full batches in a row, the most held at once
    small, large = 800, 3200
    assert peak_bytes(stage(large)) == peak_bytes(stage(small))
    assert peak_bytes(collected(large)) > 3 * peak_bytes(collected(small))  # the meter sees n


def test_cka_json_key_names_the_checkpoints(run):
    out = run[0]
    key = json.loads(Path(out / "cka.json").read_text())["key"]
    assert set(key["checkpoints"]) == {"gmn", "mlp", "cnn", "weight_mlp"}
    record = read_json(out / "runs" / "cnn" / "seed1" / "result.json")
    assert key["checkpoints"]["cnn"][1] == {"best.pt": record["files"]["best.pt"]}
    assert key["cka_permutation_samples"] == FEW and key["procrustes"] is True
