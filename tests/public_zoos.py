"""Files written the way the public projects' own scripts write them, for the readers' tests.

Each writer follows the script named in its docstring (read from the projects' repositories;
the behaviour is reproduced here, not their code):

* DWSNets (AvivNavon/DWSNets): an MNIST INR is ``nn.INR(in_dim=2, n_layers=3, up_scale=16)``,
  a ``seq`` Sequential of two sine layers (their own ``weight``/``bias`` parameters) and an
  ``nn.Linear``, saved with ``torch.save(model.state_dict(), …)`` as
  ``mnist_png_{training|testing}_{label}_{id}/checkpoints/model_final.pth``.
  ``experiments/mnist/generate_data_splits.py`` globs ``mnist_png_*/**/*.pth`` under its
  ``--data-path``, puts a file in train when "train" is in its path (else test), stores
  ``(os.getcwd() / p).as_posix()`` (an absolute path on the machine that ran it) and the
  label ``p.parent.parent.stem.split("_")[-2]`` (a string), in glob order, moves
  ``--val-size`` train entries to val with ``train_test_split``, and dumps the splits (train
  and test in the order the glob met them, then val).
* neural-graphs (mkofinas/neural-graphs):
  ``experiments/inr_classification/dataset/generate_mnist_data_splits.py`` does the same with
  paths relative to its ``dataset`` folder (``mnist-inrs/mnist_png_…``);
  ``preprocess_fmnist.py`` rewrites DWSNets' Fashion-MNIST ``fmnist_inrs/splits.json``
  (``{split: [paths]}``) as ``{split: {"path": ["fmnist_inrs/<last two parts>"], "label":
  [the file's "label"]}}``; it JSON-dumps the labels it loads, so each ``.pth`` holds its
  label as a Python int.
* NFN (AllanYangZhou/nfn): ``experiments/data_utils.py:SirenDataset`` reads
  ``{prefix}_*/*.pth`` (``net(\\d+).pth``, label from ``_(\\d)s``), the augmented copies in
  ``{prefix}_aug{k}_{label}s``; a SIREN is ``siren_utils.Siren`` (``net.{i}.linear`` sine
  layers, then ``net.{L}`` linear: ``outermost_linear=True``), 32 hidden features, 1 hidden
  layer; the splits are index ranges ``split_points`` (45,000 and 50,000 for MNIST).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path, PurePosixPath

import torch
from sklearn.model_selection import train_test_split
from torch import nn

# the machine that ran DWSNets' split script (its absolute paths end up in the JSON)
DWSNETS_MACHINE_CWD = "/home/someone/DWSNets/experiments/mnist"


class DWSNetsSine(nn.Module):
    """A DWSNets sine layer: its own ``weight`` [out, in] and ``bias`` [out] parameters."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in).uniform_(-1 / dim_in, 1 / dim_in))
        self.bias = nn.Parameter(torch.zeros(dim_out))

    def forward(self, x):
        return torch.sin(30.0 * nn.functional.linear(x, self.weight, self.bias))


class DWSNetsINR(nn.Module):
    """The MNIST INR layout of DWSNets: 2 → 32 → 32 → 1, under ``seq``."""

    def __init__(self):
        super().__init__()
        self.seq = nn.Sequential(DWSNetsSine(2, 32), DWSNetsSine(32, 32), nn.Linear(32, 1))

    def forward(self, x):
        return self.seq(x) + 0.5


def dwsnets_inr_state(seed: int) -> dict:
    torch.manual_seed(seed)
    return DWSNetsINR().state_dict()


def write_dwsnets_mnist_inrs(data_dir: Path, inrs) -> dict[int, dict]:
    """``inrs``: (mode "training"/"testing", label, id) triples → their state_dicts by id."""
    states = {}
    for mode, label, index in inrs:
        folder = Path(data_dir) / f"mnist_png_{mode}_{label}_{index}" / "checkpoints"
        folder.mkdir(parents=True)
        states[index] = dwsnets_inr_state(index)
        torch.save(states[index], folder / "model_final.pth")
    return states


def _mnist_splits(files: list[PurePosixPath], stored, val_size: int, seed: int) -> dict:
    split = defaultdict(lambda: defaultdict(list))
    for file in files:
        name = "train" if "train" in file.as_posix() else "test"
        split[name]["path"].append(stored(file))
        split[name]["label"].append(file.parent.parent.stem.split("_")[-2])
    train, val = train_test_split(range(len(split["train"]["path"])), test_size=val_size,
                                  random_state=seed)
    for key in ("path", "label"):
        column = split["train"][key]
        split["val"][key] = [column[i] for i in val]
        split["train"][key] = [column[i] for i in train]
    return split


def dwsnets_mnist_splits(cwd: Path, data_path: str, save_path: str, val_size: int,
                         seed: int = 0, name: str = "mnist_splits.json") -> Path:
    """DWSNets' ``generate_data_splits.py --data-path data_path --save-path save_path`` run in
    ``cwd``, on a machine whose working directory was ``DWSNETS_MACHINE_CWD``."""
    files = [PurePosixPath(p.relative_to(cwd))
             for p in (Path(cwd) / data_path).glob("mnist_png_*/**/*.pth")]
    split = _mnist_splits(files, lambda f: (PurePosixPath(DWSNETS_MACHINE_CWD) / f).as_posix(),
                          val_size, seed)
    out = Path(cwd) / save_path / name
    out.write_text(json.dumps(split))
    return out


def neural_graphs_mnist_splits(dataset_dir: Path, data_path: str = "mnist-inrs",
                               val_size: int = 1, seed: int = 0) -> Path:
    """neural-graphs' ``generate_mnist_data_splits.py`` (paths relative to ``dataset``)."""
    dataset_dir = Path(dataset_dir)
    files = [PurePosixPath(p.relative_to(dataset_dir))
             for p in (dataset_dir / data_path).glob("mnist_png_*/**/*.pth")]
    split = _mnist_splits(files, PurePosixPath.as_posix, val_size, seed)
    out = dataset_dir / "mnist_splits.json"
    out.write_text(json.dumps(split))
    return out


def write_dwsnets_fmnist(dataset_dir: Path, labels: dict[str, list[int]],
                         machine: str = "/checkpoint/someone/data") -> dict[str, list[dict]]:
    """DWSNets' Fashion-MNIST INRs (``fmnist_inrs/{train,test}/model_{n}.pth``, weights plus
    an int ``label``) and their ``fmnist_inrs/splits.json`` (``{split: [absolute paths]}``,
    val drawn from the train folder). Returns the weights per split."""
    inrs = Path(dataset_dir) / "fmnist_inrs"
    listing, states, count = {}, {}, 0
    for split, split_labels in labels.items():
        folder = "test" if split == "test" else "train"
        (inrs / folder).mkdir(parents=True, exist_ok=True)
        listing[split], states[split] = [], []
        for label in split_labels:
            state = dwsnets_inr_state(1000 + count)
            torch.save({**state, "label": label}, inrs / folder / f"model_{count}.pth")
            listing[split].append(f"{machine}/fmnist_inrs/{folder}/model_{count}.pth")
            states[split].append(state)
            count += 1
    (inrs / "splits.json").write_text(json.dumps(listing))
    return states


def neural_graphs_fmnist_splits(dataset_dir: Path, data_path: str = "fmnist_inrs/splits.json"
                                ) -> Path:
    """neural-graphs' ``preprocess_fmnist.py`` (``--save-path .``) run on DWSNets' listing."""
    dataset_dir = Path(dataset_dir)
    listing = json.loads((dataset_dir / data_path).read_text())
    split = defaultdict(lambda: defaultdict(list))
    for name in ("train", "val", "test"):
        split[name]["path"] = [(PurePosixPath(data_path).parent
                                / PurePosixPath(*PurePosixPath(p).parts[-2:])).as_posix()
                               for p in listing[name]]
        split[name]["label"] = [torch.load(dataset_dir / p, weights_only=True)["label"]
                                for p in split[name]["path"]]
    out = dataset_dir / "fmnist_splits.json"
    out.write_text(json.dumps(split))
    return out


class NFNSineLayer(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return torch.sin(30.0 * self.linear(x))


def nfn_siren_state(seed: int, out_features: int = 1) -> dict:
    """NFN's ``Siren(in_features=2, hidden_features=32, hidden_layers=1, out_features,
    outermost_linear=True)`` state_dict: ``net.0.linear``, ``net.1.linear``, ``net.2``."""
    torch.manual_seed(seed)
    net = nn.Sequential(NFNSineLayer(2, 32), NFNSineLayer(32, 32), nn.Linear(32, out_features))
    return nn.ModuleDict({"net": net}).state_dict()


def write_nfn_sirens(root: Path, labels: list[int], prefix: str = "randinit_smaller",
                     augmented: int = 0, out_features: int = 1) -> list[dict]:
    """``net{idx}.pth`` for idx 0, 1, … in ``{prefix}_{label}s``, and ``augmented`` copies per
    network in ``{prefix}_aug{k}_{label}s`` (other weights, the same idx)."""
    states = []
    for idx, label in enumerate(labels):
        folder = Path(root) / f"{prefix}_{label}s"
        folder.mkdir(parents=True, exist_ok=True)
        states.append(nfn_siren_state(idx, out_features))
        torch.save(states[-1], folder / f"net{idx}.pth")
        for k in range(augmented):
            copy = Path(root) / f"{prefix}_aug{k}_{label}s"
            copy.mkdir(parents=True, exist_ok=True)
            state = nfn_siren_state(10_000 + 100 * idx + k, out_features)
            torch.save(state, copy / f"net{idx}.pth")
    return states
