"""A plain folder of checkpoints plus a CSV of accuracies becomes a ModelZoo
(``gmn.zoo.import_checkpoints``); ``like=`` gives the layouts keys cannot tell, and reading
the zoo needs neither the module's class nor a registered factory."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

import gmn
from gmn.graph.mixed_batches import to_state_dicts
from gmn.zoo import ModelZoo, import_checkpoints


def plain_cnn(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


class SkipCNN(nn.Module):
    """A CNN whose keys look like a plain chain (``layers.{i}``, ``fc``), but whose forward
    has a skip connection, tanh and GELU: what ``like=`` is for."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(1, width, 3, padding=1),
                                     nn.Conv2d(width, width, 3, padding=1)])
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        h = torch.tanh(self.layers[0](x))
        h = F.gelu(self.layers[1](h) + h)
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def write_folder(root, modules, accuracies, header=("file", "test_accuracy"), extra=None):
    """``torch.save(module.state_dict(), root/checkpoints/cnn_{i}.pt)`` and ``accuracy.csv``."""
    (root / "checkpoints").mkdir(parents=True)
    states = []
    for i, module in enumerate(modules):
        states.append(module.state_dict())
        torch.save(states[-1], root / "checkpoints" / f"cnn_{i:03d}.pt")
    with open(root / "accuracy.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, *(extra or {})])
        for i, accuracy in enumerate(accuracies):
            writer.writerow([f"cnn_{i:03d}.pt", accuracy, *[v[i] for v in (extra or {}).values()]])
    return states


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_folder_of_state_dicts_and_a_csv_become_a_zoo(tmp_path):
    torch.manual_seed(0)
    modules = [plain_cnn(4), plain_cnn(6), plain_cnn(4), plain_cnn(4)]
    accuracies = [0.61, 0.72, 0.55, 0.9]
    states = write_folder(tmp_path, modules, accuracies, extra={"lr": [0.1, 0.2, 0.3, 0.4]})
    zoo = import_checkpoints(tmp_path / "checkpoints", tmp_path / "accuracy.csv",
                             tmp_path / "zoo", progress=False)
    assert zoo.targets().tolist() == accuracies and len(zoo.architectures) == 2
    assert [m["path"] for m in zoo.models] == [f"cnn_{i:03d}.pt" for i in range(4)]
    assert zoo.models[1]["columns"] == {"lr": "0.2"} and zoo.splits is None
    for i, state in enumerate(states):
        assert same(zoo.state_dict(i), state)
    batch, order = zoo.graphs(torch.arange(4))
    for model, state in zip(order.tolist(), to_state_dicts(batch)):
        assert same(state, states[model])
    manifest = json.loads((tmp_path / "zoo" / "manifest.json").read_text())
    assert manifest["source"]["reader"] == "checkpoint-folder"


def read_in_a_fresh_process(zoo_folder, script: str) -> str:
    """Run ``script`` (with ``zoo = ModelZoo(zoo_folder)``) in a new interpreter that imports
    nothing but ``gmn.zoo.store``: no reader, no test module, no user class."""
    code = (f"from gmn.zoo.store import ModelZoo\nzoo = ModelZoo({str(zoo_folder)!r})\n"
            + textwrap.dedent(script))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_inferred_zoo_is_read_without_importing_the_readers(tmp_path):
    torch.manual_seed(0)
    states = write_folder(tmp_path, [plain_cnn(4), plain_cnn(4)], [0.5, 0.6])
    import_checkpoints(tmp_path / "checkpoints", tmp_path / "accuracy.csv", tmp_path / "zoo",
                       progress=False)
    torch.save(states, tmp_path / "expected.pt")
    printed = read_in_a_fresh_process(tmp_path / "zoo", f"""
        import torch
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        for i, state in enumerate(expected):
            got = zoo.state_dict(i)
            assert all(torch.equal(got[k], state[k]) for k in state)
        print(zoo.graphs([0, 1])[0].num_graphs)
    """)
    assert printed.strip() == "2"


def test_like_stores_the_layout_the_keys_cannot_tell(tmp_path):
    torch.manual_seed(0)
    modules = [SkipCNN() for _ in range(3)]
    states = write_folder(tmp_path, modules, [0.3, 0.5, 0.7])
    zoo = import_checkpoints(tmp_path / "checkpoints", tmp_path / "accuracy.csv",
                             tmp_path / "zoo", like=SkipCNN(), progress=False)
    (arch, spec), = zoo.architectures.items()
    assert spec["family"] == "graph_template" and (tmp_path / "zoo" / spec["file"]).exists()
    batch, order = zoo.graphs(torch.arange(3))
    for graph, model in zip(batch.to_data_list(), order.tolist()):
        expected = gmn.from_state_dict(states[model], like=modules[model])
        for field in ("x", "edge_attr", "edge_index", "edge_type", "node_type", "node_act"):
            assert torch.equal(graph[field], expected[field]), field
    with pytest.raises(ValueError, match="cnn_000.pt: its layout cannot .*pass like="):
        import_checkpoints(tmp_path / "checkpoints", tmp_path / "accuracy.csv",
                           tmp_path / "inferred", progress=False)

    # another process, where SkipCNN does not exist, reads the graphs and runs the networks
    images = torch.randn(2, 1, 6, 6)
    torch.save({"images": images, "outputs": [m.eval()(images) for m in modules]},
               tmp_path / "expected.pt")
    printed = read_in_a_fresh_process(tmp_path / "zoo", f"""
        import torch
        from gmn.graph.executor import execute
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        batch, order = zoo.graphs([0, 1, 2])
        for graph, model in zip(batch.to_data_list(), order.tolist()):
            out = execute(graph, expected["images"])
            assert torch.allclose(out, expected["outputs"][model], atol=1e-5), model
        try:
            zoo.module(0)
        except ValueError as error:
            print(error)
    """)
    assert "was imported with like=: the zoo stores its graph template" in printed


def test_a_damaged_stored_template_is_named(tmp_path):
    torch.manual_seed(0)
    write_folder(tmp_path, [SkipCNN()], [0.3])
    zoo = import_checkpoints(tmp_path / "checkpoints", tmp_path / "accuracy.csv",
                             tmp_path / "zoo", like=SkipCNN(), progress=False)
    (spec,) = zoo.architectures.values()
    path = tmp_path / "zoo" / spec["file"]
    path.write_bytes(path.read_bytes()[:-7] + b"garbage")
    with pytest.raises(gmn.files.IntegrityError, match=f"{spec['file']}: sha256"):
        ModelZoo(tmp_path / "zoo")


def test_a_callable_like_and_safetensors_checkpoints(tmp_path):
    torch.manual_seed(0)
    widths = [4, 6, 4]
    (tmp_path / "checkpoints").mkdir()
    states = []
    for i, width in enumerate(widths):
        states.append(SkipCNN(width).state_dict())
        save_file(states[-1], str(tmp_path / "checkpoints" / f"run{i}.safetensors"))
    (tmp_path / "scores.csv").write_text("model,acc,split\nrun0,0.1,train\nrun1,0.2,val\n"
                                         "run2,0.3,test\n")
    seen = []

    def like(relative, state):
        seen.append(relative)
        return SkipCNN(state["fc.weight"].shape[1])

    zoo = import_checkpoints(tmp_path / "checkpoints", tmp_path / "scores.csv",
                             tmp_path / "zoo", like=like, progress=False)
    assert seen == ["run0.safetensors", "run1.safetensors", "run2.safetensors"]
    assert len(zoo.architectures) == 2  # widths 4 and 6; the two width-4 CNNs share one
    assert {k: v.tolist() for k, v in zoo.splits.items()} == {"train": [0], "val": [1],
                                                               "test": [2]}
    assert all(same(zoo.state_dict(i), s) for i, s in enumerate(states))


@pytest.mark.parametrize("table, message", [
    ("cnn_000.pt,0.5\ncnn_001.pt,0.6\n",
     r"needs a header line naming its columns.*first line is \['cnn_000.pt', '0.5'\]"),
    ("file,test_accuracy\ncnn_000.pt,0.5\n",
     r"1 checkpoint\(s\) in .*checkpoints have no row in .*accuracy.csv: cnn_001.pt"),
    ("file,test_accuracy\ncnn_000.pt,0.5\ncnn_001.pt,0.6\ncnn_002,0.7\n",
     r"accuracy.csv, line 4: 'cnn_002' matches no checkpoint"),
    ("file,test_accuracy\ncnn_000.pt,0.5\ncnn_001.pt,n/a\n",
     r"accuracy.csv, line 3: test_accuracy 'n/a' is not a finite number"),
    ("file,test_accuracy\ncnn_000.pt,0.5\ncnn_001.pt,nan\n",
     r"accuracy.csv, line 3: test_accuracy 'nan' is not a finite number"),
    ("file,acc,loss\ncnn_000.pt,0.5,1\ncnn_001.pt,0.6,2\n",
     r"has columns \['acc', 'loss'\] besides the file: say which is the target"),
    ("file,test_accuracy\ncnn_000.pt,0.5\ncnn_000,0.6\ncnn_001.pt,0.6\n",
     r"lines 2 and 3 both name .*cnn_000.pt"),
    ("file,test_accuracy,split\ncnn_000.pt,0.5,train\ncnn_001.pt,0.6,test\n",
     r"accuracy.csv: split\(s\) \['val'\] are empty"),
    ("file,test_accuracy,split\ncnn_000.pt,0.5,train\ncnn_001.pt,0.6,validation\n",
     r"accuracy.csv, line 3: split 'validation' is not train, val or test"),
    (None, r"cnn_001.pt.*(empty, truncated|unreadable)"),  # a cut checkpoint
])
def test_bad_folders_and_csvs_are_named(tmp_path, table, message):
    torch.manual_seed(0)
    write_folder(tmp_path, [plain_cnn(4), plain_cnn(4)], [0.5, 0.6])
    if table is None:
        (tmp_path / "checkpoints" / "cnn_001.pt").write_bytes(b"PK\x03\x04 cut")
    else:
        (tmp_path / "accuracy.csv").write_text(table)
    with pytest.raises(ValueError, match=message):
        import_checkpoints(tmp_path / "checkpoints", tmp_path / "accuracy.csv",
                           tmp_path / "zoo", progress=False)


def test_a_checkpoint_that_does_not_fit_like_is_named(tmp_path):
    torch.manual_seed(0)
    write_folder(tmp_path, [SkipCNN(4), SkipCNN(6)], [0.5, 0.6])
    with pytest.raises(ValueError, match=r"cnn_001.pt does not fit like= \(SkipCNN\): state_dict "
                                         r"entry 'layers.0.weight' has shape \(6, 1, 3, 3\)"):
        import_checkpoints(tmp_path / "checkpoints", tmp_path / "accuracy.csv",
                           tmp_path / "zoo", like=SkipCNN(4), progress=False)


def test_keys_that_cannot_be_read_ask_for_like(tmp_path):
    class Blocks(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.ModuleDict({"conv1": nn.Conv2d(1, 4, 3), "conv2": nn.Conv2d(4, 4, 3)})
            self.head = nn.Linear(4, 10)

    write_folder(tmp_path, [Blocks()], [0.5])
    with pytest.raises(ValueError, match="cnn_000.pt: its layout cannot be read from its keys.*"
                                         "pass like="):
        import_checkpoints(tmp_path / "checkpoints", tmp_path / "accuracy.csv",
                           tmp_path / "zoo", progress=False)
