"""Batched SIREN fitting: gradients, convergence, seeding, views, shared init, chunking."""

import math

import pytest
import torch

from gmn.data.batched_siren import Workspace, init_params, mse_and_grads, render
from gmn.data.fit import FitRecipe, fit_inrs, psnr_from_mse
from gmn.data.images import load_digits
from gmn.graph.function_samples import network_outputs
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.models.siren import Siren, SirenLayout, image_grid


def sirens(layout: SirenLayout, stacked: dict) -> Weights:
    dtype = stacked["seq.0.weight"].dtype
    return Weights.from_stacked(GraphTemplate.from_module(layout.build().to(dtype)), stacked)


def forward(layout: SirenLayout, stacked: dict, coords: torch.Tensor) -> torch.Tensor:
    """The SIRENs' outputs [B, P, out] through the library's one batched evaluation."""
    return network_outputs(sirens(layout, stacked), coords)


@pytest.fixture(scope="module")
def digits():
    return load_digits(12).images[:6]


@pytest.mark.parametrize("layout", [
    SirenLayout(),
    SirenLayout(hidden=(8, 6, 5), out_features=3, style="standard"),
])
def test_manual_backward_matches_autograd(layout):
    params = init_params(layout, [3, 4, 5])
    targets = torch.rand(3, 5 * 7, layout.out_features, generator=torch.Generator().manual_seed(0))
    mse, grads = mse_and_grads(layout, params, 5, 7, targets)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    loss = (forward(layout, leaves, image_grid(5, 7)) - targets).square().mean(dim=(1, 2))
    loss.sum().backward()
    assert torch.allclose(mse, loss.detach(), rtol=1e-4)
    for key, leaf in leaves.items():  # float32 sin(ω₀ z) at |ω₀ z| ~ 100: ~1e-5 relative noise
        assert torch.allclose(grads[key], leaf.grad, rtol=1e-3, atol=1e-4 * leaf.grad.abs().max())


@pytest.mark.parametrize("layout", [
    SirenLayout(),
    SirenLayout(hidden=(8, 6, 5), out_features=3, style="standard"),
])
def test_a_reused_workspace_gives_the_fresh_results_for_any_batch_size(layout):
    """Buffers sized by a batch of 5 are reused (front part) by a batch of 2: same numbers."""
    workspace = Workspace()
    generator = torch.Generator().manual_seed(1)
    addresses = None
    for seeds in ([1, 2, 3, 4, 5], [6, 7], [8, 9, 10]):
        params = init_params(layout, seeds)
        targets = torch.rand(len(seeds), 5 * 7, layout.out_features, generator=generator)
        fresh_mse, fresh_grads = mse_and_grads(layout, params, 5, 7, targets)
        mse, grads = mse_and_grads(layout, params, 5, 7, targets, workspace)
        assert torch.equal(mse, fresh_mse)
        assert all(torch.equal(grads[k], fresh_grads[k]) for k in fresh_grads)
        now = {name: buffer.data_ptr() for name, buffer in workspace._buffers.items()}
        assert addresses in (None, now)  # no buffer was allocated again
        addresses = now


def test_gradients_follow_the_parameters_dtype():
    """float64 parameters with float32 targets: float64 results, equal to autograd's."""
    layout = SirenLayout(hidden=(8, 6))
    params = init_params(layout, [1, 2], dtype=torch.float64)
    targets = torch.rand(2, 4 * 5, 1, generator=torch.Generator().manual_seed(2))
    mse, grads = mse_and_grads(layout, params, 4, 5, targets)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    coords = image_grid(4, 5, dtype=torch.float64)
    forward(layout, leaves, coords).sub(targets).square().mean(dim=(1, 2)).sum().backward()
    assert mse.dtype == torch.float64
    for key, leaf in leaves.items():
        torch.testing.assert_close(grads[key], leaf.grad, rtol=1e-9, atol=1e-12)


def test_batched_forward_equals_the_siren_module():
    layout = SirenLayout(style="standard", out_features=3)
    params = init_params(layout, [7, 8])
    model = layout.build()
    model.load_state_dict({k: v[1] for k, v in params.items()})
    coords = image_grid(4, 6)
    assert torch.allclose(forward(layout, params, coords)[1], model(coords), atol=1e-6)


def test_fit_reaches_the_target_and_the_module_reproduces_the_psnr(digits):
    result = fit_inrs(digits, steps=400, lr=1e-3, target_psnr=30.0, progress=False)
    assert list(result.params) == list(Siren().state_dict())
    assert (result.psnr >= 30.0).all()
    assert (result.steps < 400).all(), "early stopping froze the INRs at the target"
    model = Siren()
    model.load_state_dict({k: v[2] for k, v in result.params.items()})
    with torch.no_grad():
        image = model(image_grid(12, 12)).reshape(1, 12, 12)
    psnr = psnr_from_mse((image - digits[2]).square().mean())
    assert abs(psnr.item() - result.psnr[2].item()) < 0.01
    rendered = render(sirens(result.recipe.layout, result.params), 12, 12)
    assert torch.allclose(rendered[2], image, atol=1e-5)


def test_same_seed_gives_identical_parameters_whatever_the_chunk_size():
    images = load_digits().images[:3]
    kwargs = dict(steps=40, lr=2e-3, target_psnr=27.0, progress=False, views=2)
    reference = fit_inrs(images, chunk_size=6, **kwargs)
    assert 0 < reference.steps.min() < reference.steps.max() < 40, "INRs left at different steps"
    for chunk_size in (1, 4):
        other = fit_inrs(images, chunk_size=chunk_size, **kwargs)
        for key in reference.params:
            assert torch.equal(reference.params[key], other.params[key]), key
        assert torch.equal(reference.psnr, other.psnr)
        assert torch.equal(reference.steps, other.steps)
    different = fit_inrs(images, chunk_size=6, seed=1, **kwargs)
    assert not torch.equal(different.params["seq.1.weight"], reference.params["seq.1.weight"])


def test_views_and_init_modes(digits):
    independent = fit_inrs(digits[:3], steps=0, views=2, progress=False)
    assert independent.image_index.tolist() == [0, 0, 1, 1, 2, 2]
    assert independent.view.tolist() == [0, 1, 0, 1, 0, 1]
    weights = independent.params["seq.1.weight"]
    assert len({tuple(w.flatten().tolist()) for w in weights}) == 6

    shared = fit_inrs(digits[:3], steps=0, views=2, init="shared", progress=False)
    weights = shared.params["seq.1.weight"]
    assert torch.equal(weights[0], weights[2]) and torch.equal(weights[0], weights[4])
    assert not torch.equal(weights[0], weights[1]), "each view has its own shared init"
    trained = fit_inrs(digits[:3], steps=5, init="shared", progress=False)
    assert not torch.equal(trained.params["seq.1.weight"][0], trained.params["seq.1.weight"][1])


def test_standard_siren_fits_colour_images():
    images = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    layout = SirenLayout(out_features=3, style="standard")
    result = fit_inrs(images, layout=layout, steps=50, lr=1e-3, target_psnr=None,
                      progress=False)
    assert result.params["seq.2.weight"].shape == (2, 3, 32)
    start = fit_inrs(images, layout=layout, steps=0, progress=False)
    assert (result.psnr > start.psnr + 3).all()
    assert result.recipe.to_dict()["layout"]["style"] == "standard"


def test_bad_inputs_are_named(digits):
    with pytest.raises(ValueError, match="3 channels.*out_features=1"):
        fit_inrs(torch.rand(2, 3, 4, 4), progress=False)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        fit_inrs(torch.rand(4, 4), progress=False)
    with pytest.raises(TypeError, match="stepz"):
        fit_inrs(digits, stepz=3)
    with pytest.raises(ValueError, match="init"):
        FitRecipe(init="random")


def test_recipe_round_trips_through_its_dict():
    recipe = FitRecipe(layout=SirenLayout(hidden=(16,)), steps=7, init="shared")
    assert FitRecipe.from_dict(recipe.to_dict()) == recipe


@pytest.mark.parametrize("style", ["dwsnets", "standard"])
def test_init_bounds_are_nn_linear_default_and_sitzmann(style):
    """The one SIREN initialisation (``init_bounds``) against independent references: biases
    and dwsnets weights as ``nn.Linear`` draws them (kaiming_uniform with a=√5:
    √(6/((1+a²)·fan_in))), standard weights as Sitzmann et al. write them; ``init_params`` and
    the ``Siren`` module stay inside them and reach them."""
    from gmn.models.siren import init_bounds

    layout = SirenLayout(hidden=(16, 16), w0=30.0, style=style)
    params = init_params(layout, list(range(200)))
    torch.manual_seed(0)
    modules = [layout.build() for _ in range(200)]
    for i, fan_in in enumerate(layout.widths[:-1]):
        linear = math.sqrt(6.0 / ((1 + 5) * fan_in))
        sitzmann = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / 30.0
        expected = (sitzmann if style == "standard" else linear, linear)
        assert init_bounds(i, fan_in, 30.0, style) == pytest.approx(expected, rel=1e-12)
        for kind, bound in zip(("weight", "bias"), expected):
            for drawn in (params[f"seq.{i}.{kind}"],
                          torch.stack([m.state_dict()[f"seq.{i}.{kind}"] for m in modules])):
                largest = drawn.abs().max().item()
                assert bound * 0.9 < largest <= bound * (1 + 1e-6), (i, kind, largest, bound)


@pytest.mark.parametrize("per_row", [False, True])
def test_adam_update_is_torch_adam_row_by_row(per_row):
    """Known answer from torch.optim.Adam: every row follows its own Adam (its learning rate,
    its L2 coefficient added to the gradient, its step count: rows join at different steps,
    as INRs join the fitting pool); ``per_row=False`` is the fit's one learning rate."""
    from gmn.data.fit import adam_update

    generator = torch.Generator().manual_seed(0)
    rows, size, betas, eps = 3, 5, (0.9, 0.999), 1e-8
    params = torch.randn(rows, size, generator=generator, dtype=torch.float64)
    lr = torch.tensor([1e-3, 1e-2, 3e-2], dtype=torch.float64) if per_row else 1e-2
    decay = torch.tensor([0.0, 1e-3, 1e-1], dtype=torch.float64) if per_row else None
    references = [params[b].clone().requires_grad_() for b in range(rows)]
    optimisers = [torch.optim.Adam([references[b]], lr=float(lr[b]) if per_row else lr,
                                   betas=betas, eps=eps,
                                   weight_decay=float(decay[b]) if per_row else 0.0)
                  for b in range(rows)]
    exp_avg, exp_avg_sq = torch.zeros_like(params), torch.zeros_like(params)
    steps = torch.zeros(rows, dtype=torch.long)
    for step in range(8):
        grad = torch.randn(rows, size, generator=generator, dtype=torch.float64)
        active = torch.tensor([b for b in range(rows) if step >= 2 * b])  # row b joins at 2b
        for b in active.tolist():
            references[b].grad = grad[b].clone()
            optimisers[b].step()
        steps[active] += 1
        p, m, v = params[active], exp_avg[active], exp_avg_sq[active]
        adam_update(p, grad[active], m, v, steps[active], lr[active] if per_row else lr, betas,
                    eps, decay[active] if per_row else None)
        params[active], exp_avg[active], exp_avg_sq[active] = p, m, v
    torch.testing.assert_close(params, torch.stack([r.detach() for r in references]),
                               rtol=1e-12, atol=1e-14)
