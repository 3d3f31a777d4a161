"""A GraphTemplate stored as data (gmn.zoo.stored_template) is the same template: the same
graphs, permutations and executed outputs, for every test architecture; a file that asks for
code, or was written by a gmn with other template attributes, is refused."""

from __future__ import annotations

import json

import pytest
import torch

from gmn.graph.executor import execute
from gmn.graph.permutation import permute
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.testing.architectures import FEED_FORWARD_BUILDERS, example_input, make_transformer
from gmn.zoo.stored_template import (
    StoredTemplateError,
    read_template,
    template_bytes,
    template_from_bytes,
    write_template,
)


@pytest.mark.parametrize("build", [*FEED_FORWARD_BUILDERS, make_transformer],
                         ids=lambda b: b.__name__)
def test_a_stored_template_is_the_same_template(tmp_path, build):
    model = build(seed=0).eval()
    original = GraphTemplate.from_module(model)
    digest = write_template(original, tmp_path / "template.safetensors")
    stored = read_template(tmp_path / "template.safetensors")
    assert template_bytes(stored) == template_bytes(original)
    assert len(digest) == 64
    states = [build(seed=s).state_dict() for s in range(3)]
    graphs = {name: Weights.from_state_dicts(t, states).graphs()
              for name, t in (("original", original), ("stored", stored))}
    for key in graphs["original"].keys():
        if isinstance(graphs["original"][key], torch.Tensor):
            assert torch.equal(graphs["original"][key], graphs["stored"][key]), key
    permuted = [permute(Weights.from_state_dicts(t, states), torch.Generator().manual_seed(1))
                for t in (original, stored)]
    assert torch.equal(permuted[0].params, permuted[1].params)
    inputs = example_input(model)
    assert torch.allclose(execute(stored.graph(states[0]), inputs), model(inputs), atol=1e-5)


def header(data: bytes) -> tuple[int, dict]:
    length = int.from_bytes(data[:8], "little")
    return length, json.loads(data[8:8 + length])


def with_header(data: bytes, edit) -> bytes:
    """``data`` with its safetensors header's metadata edited (tensor offsets unchanged)."""
    length, parsed = header(data)
    attributes = json.loads(parsed["__metadata__"]["gmn-template"])
    edit(attributes["attributes"])
    parsed["__metadata__"]["gmn-template"] = json.dumps(attributes)
    text = json.dumps(parsed).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + length:]


def test_a_stored_template_that_asks_for_other_code_is_refused():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(2, 1))
    data = template_bytes(GraphTemplate.from_module(model))

    def swap_function(attributes):
        text = json.dumps(attributes["program"])
        assert '"$function": "torch.flatten"' in text
        attributes["program"] = json.loads(text.replace('"torch.flatten"', '"torch.save"'))

    with pytest.raises(StoredTemplateError, match="unknown function 'torch.save'"):
        template_from_bytes(with_header(data, swap_function), "edited")


def test_a_template_from_another_gmn_is_refused():
    data = template_bytes(GraphTemplate.from_module(torch.nn.Linear(2, 3)))
    with pytest.raises(StoredTemplateError, match=r"other attributes \(missing \['ties'\], extra "
                                                  r"\['old_ties'\]\); import the checkpoints"):
        template_from_bytes(with_header(data, lambda a: a.update(old_ties=a.pop("ties"))), "old")
    with pytest.raises(StoredTemplateError, match="cut is not a readable stored graph template"):
        template_from_bytes(data[:40], "cut")
