"""`rank_within_layer` against a direct per-group sort."""

import torch

from gmn.nn.rank import rank_within_layer


def test_rank_matches_a_per_group_sort():
    generator = torch.Generator().manual_seed(0)
    key = torch.randn(40, generator=generator)
    group = torch.randint(0, 5, (40,), generator=generator)
    expected = torch.empty(40, dtype=torch.long)
    for g in group.unique():
        members = (group == g).nonzero().flatten().tolist()
        for position, node in enumerate(sorted(members, key=lambda i: key[i].item())):
            expected[node] = position
    assert torch.equal(rank_within_layer(key, group), expected)
