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


def test_later_keys_break_ties_of_earlier_ones():
    generator = torch.Generator().manual_seed(1)
    keys = torch.randint(0, 3, (60, 3), generator=generator).double()  # many ties per column
    group = torch.randint(0, 4, (60,), generator=generator)
    expected = torch.empty(60, dtype=torch.long)
    for g in group.unique():
        members = (group == g).nonzero().flatten().tolist()
        ordered = sorted(members, key=lambda i: (*keys[i].tolist(), i))
        for position, node in enumerate(ordered):
            expected[node] = position
    assert torch.equal(rank_within_layer(keys, group), expected)
