"""Cost of the trainer's finite checks (gradients + parameters, `Trainer._check_finite`) against
one GMN train step (64 SIREN graphs, hidden 64, 4 layers, 1 thread).

    python -m benchmarks.finite_check_overhead
"""

import math
import time

import torch
from torch.nn.utils import get_total_norm
from torch_geometric.data import Batch

import gmn
from gmn.models.siren import Siren
from gmn.nn import GMN

torch.set_num_threads(1)
torch.manual_seed(0)
batch = Batch.from_data_list([gmn.from_state_dict(Siren()) for _ in range(64)])
model = GMN(hidden_dim=64, num_layers=4)
opt = torch.optim.AdamW(model.parameters())
y = torch.randint(0, 10, (64,))
params = list(model.parameters())


def step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(batch), y).backward()
    opt.step()


def checks():
    for values in ([p.grad for p in params], params):
        bool(get_total_norm([v.detach() for v in values], math.inf).isfinite())


for name, fn in (("train step", step), ("finite checks", checks)) * 2:
    fn()
    t = time.perf_counter()
    for _ in range(10):
        fn()
    print(f"{name}: {(time.perf_counter() - t) / 10 * 1e3:.1f} ms")
