"""The benchmark's GMN families: ``gmn``/``gmn_noaug`` read the parameter graph alone,
``gmn_probe`` adds function samples on the INR pixel grid; the defaults and the cache key."""

import pytest
import torch
from torch import nn

from benchmarks.inr_classification.config import FAMILIES, BenchmarkConfig
from benchmarks.inr_classification.data import BenchmarkData
from benchmarks.inr_classification.families import plan_family
from benchmarks.inr_classification.gmn_family import (
    GMN_TRAIN_DEFAULTS,
    gmn_augmentation,
    gmn_build_options,
    split_gmn_config,
)
from benchmarks.inr_classification.training import _upgraded_key, run_key
from gmn.data.batched_siren import render
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.models.siren import Siren, image_grid
from gmn.nn.params_to_gmn import build_gmn


@pytest.fixture(scope="module")
def siren_params():
    torch.manual_seed(0)
    nets = [Siren(hidden=(8, 8)) for _ in range(4)]
    template = GraphTemplate.from_module(nets[0])
    return template, Weights.from_state_dicts(template, [n.state_dict() for n in nets]).params, nets


def tiny_data(template, params, image_size=(5, 4), train=2) -> BenchmarkData:
    """Four INRs of two classes as the benchmark holds them: ``train`` for training, one for
    validation, the last for testing."""
    return BenchmarkData(
        name="tiny", setting="shared initialisation", images=torch.zeros(4, 1, *image_size),
        labels=torch.arange(4) % 2,
        params=params, psnr=torch.full((4, 1), 40.0),
        split={"train": torch.arange(train), "val": torch.tensor([train]),
               "test": torch.tensor([3])},
        template=template, num_classes=2, key={"d": 1}, description="", inr_description="",
    )


def test_defaults_and_overrides():
    from gmn.nn import INR_WEIGHTS_ONLY, GMNConfig

    model, train = split_gmn_config({})
    assert model == {"function_samples": False}  # gmn: the preset below, no samples
    assert gmn_build_options("gmn", model) == {"function_samples": False, **INR_WEIGHTS_ONLY}
    assert gmn_build_options("gmn", {"hidden_dim": 8})["hidden_dim"] == 8
    assert (train["lr"], train["weight_decay"], train["shift_pixels"]) == (1e-2, 0.05, 0)
    assert (train["batch_size"], train["epochs"]) == (32, 60)
    assert (train["input_noise"], train["label_smoothing"]) == (0.6, 0.1)
    assert split_gmn_config({}, "gmn_noaug")[0] == model
    probe, probe_train = split_gmn_config({}, "gmn_probe")
    assert (probe_train["lr"], probe_train["batch_size"], probe_train["epochs"]) == (3e-3, 64, 10)
    assert probe_train["shift_pixels"] == "auto"
    assert (probe_train["input_noise"], probe_train["label_smoothing"]) == (0.0, 0.0)
    assert probe["function_samples"] is True
    assert (probe["hidden_dim"], probe["num_layers"], probe["dropout"]) == (64, 2, 0.2)
    assert (probe["fourier_frequencies"], probe["edge_message"]) == (0, "additive")
    assert (probe["canonical_standardization"], probe["rank_embedding"]) == (False, False)
    assert INR_WEIGHTS_ONLY["canonical_standardization"]  # the weights-only preset
    assert not GMNConfig().canonical_standardization  # GMN() needs no fitting call
    model, train = split_gmn_config({"hidden_dim": 16, "lr": 0.01}, "gmn_probe")
    assert (model["function_samples"], model["hidden_dim"], train["lr"]) == (True, 16, 0.01)
    with pytest.raises(ValueError, match="function_samples is decided by the family"):
        split_gmn_config({"function_samples": True})
    with pytest.raises(ValueError, match="not a GMN family"):
        split_gmn_config({}, "mlp")


def test_function_samples_are_the_neurons_on_the_pixel_grid(siren_params):
    template, raw, nets = siren_params
    # the benchmark feeds standardised parameters; the function samples must undo that
    scale, shift = torch.full((raw.shape[1],), 2.0), torch.full((raw.shape[1],), 0.5)
    params = (raw - shift) / scale
    options = split_gmn_config({"hidden_dim": 8}, "gmn_probe")[0]
    model = build_gmn(template, 3, params, options, (5, 4), raw_affine=(scale, shift))
    assert model.gmn.config.node_in_dim == 5 + 20
    graphs = model.graph(params)
    torch.testing.assert_close(graphs.x[:, :5], template.batch(params).x)
    assert graphs.x.shape == (params.shape[0] * template.num_nodes, 25)
    # the output neuron's function samples are the INR's image on the pixel grid
    out_rows = graphs.x.view(params.shape[0], template.num_nodes, 25)[:, -1, 5:]
    with torch.no_grad():
        expected = torch.stack([n(image_grid(5, 4)).squeeze(-1) for n in nets])
    torch.testing.assert_close(out_rows, expected, atol=1e-5, rtol=1e-4)
    assert model(params).shape == (params.shape[0], 3)


@pytest.mark.parametrize("permute", [False, True])
def test_augmentation_moves_the_standardised_inrs_by_whole_pixels(siren_params, permute):
    """Undo the standardisation after the transform: each INR draws its image moved by at
    most one pixel; without permutation only the first-layer biases changed. The benchmark
    standardises per key, so the scale is constant within a layer's weight or bias."""
    template, raw, _ = siren_params
    stacked = Weights(template, raw[:1]).stacked()
    per_key = {k: torch.full_like(v, 0.5 + i) for i, (k, v) in enumerate(stacked.items())}
    scale = Weights.from_stacked(template, per_key).params[0]
    shift = torch.full((raw.shape[1],), 0.3)
    params, labels = (raw - shift) / scale, torch.arange(len(raw))
    transform = gmn_augmentation(template, (7, 7), 1, permute, (scale, shift))
    moved, same_labels = transform((params, labels), torch.Generator().manual_seed(0))
    assert torch.equal(same_labels, labels)
    before = render(Weights(template, raw), 7, 7)
    after = render(Weights(template, moved * scale + shift), 7, 7)
    inner = (slice(None), slice(None), slice(1, 6), slice(1, 6))
    shifted = [
        torch.stack([before[b].roll((dy, dx), (-2, -1))[inner[1:]] for b in range(len(raw))])
        for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    ]
    errors = torch.stack([(after[inner] - s).abs().flatten(1).amax(1) for s in shifted])
    assert (errors.amin(0) < 1e-4).all(), "every INR shows a whole-pixel shift of its image"
    unmoved = 4  # the (dy, dx) = (0, 0) candidate
    assert (errors.argmin(0) != unmoved).any(), "some INR was really moved"
    if not permute:
        changed = (moved != params).any(0).nonzero().squeeze(1)
        positions = torch.arange(raw.shape[1])[None].float()
        bias = Weights(template, positions).stacked()["seq.0.bias"][0]
        assert 0 < len(changed) and set(changed.tolist()) <= set(bias.long().tolist())
    assert gmn_augmentation(template, (7, 7), 0, False) is None
    assert gmn_augmentation(template, (8, 8), "auto", False) is None  # under 28 px: no shift
    assert gmn_augmentation(template, (28, 28), "auto", False) is not None
    with pytest.raises(ValueError, match="shift_pixels"):
        gmn_augmentation(template, (28, 28), -1, False)
    with pytest.raises(ValueError, match="input_noise needs param_std"):
        gmn_augmentation(template, (7, 7), 0, False, input_noise=0.5)


@pytest.mark.parametrize("family", ["gmn", "gmn_noaug"])
def test_weights_only_families_get_no_function_samples(siren_params, family):
    template, params, _ = siren_params
    data = tiny_data(template, params)
    model = plan_family(family, data, BenchmarkConfig(gmn_config={"hidden_dim": 8})).build()
    assert model.graph.points is None
    assert model.gmn.config.node_in_dim == 5
    graphs = model.graph(params)
    assert torch.equal(graphs.x, template.batch(params).x)
    probe = plan_family("gmn_probe", data, BenchmarkConfig(gmn_config={"hidden_dim": 8})).build()
    assert probe.gmn.config.node_in_dim == 5 + 5 * 4


def test_unsupported_architecture_is_refused_clearly():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    template = GraphTemplate.from_module(net)
    params = Weights.from_state_dicts(template, [net.state_dict()]).params
    with pytest.raises(ValueError, match="gmn_probe family"):
        build_gmn(template, 3, params, split_gmn_config({}, "gmn_probe")[0], (6, 6))


def test_cache_key_holds_the_architecture_and_the_resolved_gmn_options(siren_params):
    template, params, _ = siren_params
    data = tiny_data(template, params, (8, 8))
    key = run_key("gmn", 0, BenchmarkConfig(), data)
    assert key["gmn_options"]["function_samples"] is False
    probe = run_key("gmn_probe", 0, BenchmarkConfig(), data)
    assert probe["gmn_options"]["function_samples"] is True
    assert probe["gmn_options"]["hidden_dim"] == 64
    wide = run_key("gmn", 0, BenchmarkConfig(gmn_config={"hidden_dim": 32}), data)
    assert wide["gmn_options"]["hidden_dim"] == 32
    # defaults of gmn.nn.GMNConfig are part of the key, resolved
    from gmn.nn import GMNConfig

    resolved = key["architecture"]["config"]
    assert resolved["fourier_frequencies"] == GMNConfig().fourier_frequencies
    assert resolved["readout"] == list(GMNConfig().readout)
    assert wide["architecture"]["config"]["hidden_dim"] == 32
    cnn = run_key("cnn", 0, BenchmarkConfig(), data)
    assert "gmn_options" not in cnn
    assert run_key("cnn", 0, BenchmarkConfig(gmn_config={"hidden_dim": 32}), data) == cnn
    spelled_out = BenchmarkConfig(gmn_config={"lr": GMN_TRAIN_DEFAULTS["lr"]})
    assert run_key("gmn", 0, spelled_out, data) == key  # the same resolved options
    assert cnn["architecture"] == {"model": "CNN", "channels": [32, 64, 128]}
    assert run_key("vit", 0, BenchmarkConfig(), data)["architecture"]["patch_size"] == 2


def test_epochs_reach_every_family_with_per_family_defaults(siren_params):
    template, params, _ = siren_params
    data = tiny_data(template, params, (8, 8))

    def epochs(**options) -> dict[str, int]:
        config = BenchmarkConfig(**options)
        planned = {f: plan_family(f, data, config).epochs for f in FAMILIES}
        keys = {f: run_key(f, 0, config, data)["epochs"] for f in FAMILIES}
        assert keys == planned  # a run's key records the epochs it trains
        return planned

    defaults = {"gmn": 60, "gmn_noaug": 60, "gmn_probe": 10, "mlp": 10, "cnn": 10,
                "vit": 10, "weight_mlp": 10, "nfn_np": 30}
    assert epochs() == defaults  # the default benchmark as before
    assert epochs(epochs=3) == dict.fromkeys(FAMILIES, 3)  # --epochs: every family
    gmns = ("gmn", "gmn_noaug", "gmn_probe")  # --gmn-config's epochs: the GMN families
    assert epochs(epochs=3, gmn_config={"epochs": 5}) == {
        f: 5 if f in gmns else 3 for f in FAMILIES}
    assert epochs(gmn_config={"epochs": 5}) == {f: 5 if f in gmns else defaults[f]
                                                 for f in FAMILIES}
    # --epochs FAMILY=N: that family, over everything else (16,gmn=60: the README's MNIST run)
    assert epochs(epochs=16, family_epochs={"gmn": 60}) == {
        f: 60 if f == "gmn" else 16 for f in FAMILIES}
    assert epochs(epochs=3, family_epochs={"gmn_probe": 4, "cnn": 2},
                  gmn_config={"epochs": 5}) == {
        **{f: 5 if f in gmns else 3 for f in FAMILIES}, "gmn_probe": 4, "cnn": 2}


def test_run_keys_written_before_epochs_reached_the_gmns_still_match(siren_params):
    template, params, _ = siren_params
    data = tiny_data(template, params, (8, 8))
    for family, own in (("gmn", 60), ("gmn_noaug", 60), ("gmn_probe", None)):
        key = run_key(family, 0, BenchmarkConfig(), data)
        # such a key held --epochs at the top and the GMN's own epochs (None: --epochs) inside
        before = {**key, "epochs": 10, "gmn_options": {**key["gmn_options"], "epochs": own}}
        assert _upgraded_key(before) == key
        other = {**before, "gmn_options": {**before["gmn_options"], "epochs": 7}}
        assert _upgraded_key(other)["epochs"] == 7 != key["epochs"]
    cnn = run_key("cnn", 0, BenchmarkConfig(), data)
    assert _upgraded_key(cnn) == cnn


def test_input_noise_is_scaled_by_each_parameters_training_spread(siren_params):
    template, params, _ = siren_params
    data = tiny_data(template, params, train=3)
    plan = plan_family("gmn_noaug", data, BenchmarkConfig(gmn_config={"input_noise": 0.5}))
    batch = params[:1].expand(4000, -1)
    noisy, _ = plan.transform((batch, torch.zeros(4000)), torch.Generator().manual_seed(0))
    expected = 0.5 * params[:3].std(0)
    torch.testing.assert_close(noisy.std(0), expected, rtol=0.05, atol=1e-6)
    off = BenchmarkConfig(gmn_config={"input_noise": 0})
    assert plan_family("gmn_noaug", data, off).transform is None  # no noise, no permutation
    with pytest.raises(ValueError, match="input_noise must be a number >= 0"):
        plan_family("gmn", data, BenchmarkConfig(gmn_config={"input_noise": -1}))


def test_nfn_np_family_is_invariant_and_probed_per_layer(siren_params):
    """``nfn_np``: NFN's invariant classifier on the flat parameters, its cache key holds
    its options, and its probed blocks give invariant per-layer states."""
    import gmn
    from benchmarks.inr_classification.families import NFN_NP
    from benchmarks.inr_classification.probes import _kept
    from gmn.graph.permutation import permute

    template, params, _ = siren_params
    data = tiny_data(template, params)
    plan = plan_family("nfn_np", data, BenchmarkConfig(families=("gmn", "mlp", "cnn", "nfn_np")))
    assert plan.inputs == "params" and plan.transform is None
    own = dict(NFN_NP["train"])
    assert plan.epochs == own.pop("epochs") and plan.train_options == own
    key = run_key("nfn_np", 0, BenchmarkConfig(), data, plan)
    assert key["architecture"]["channels"] == list(NFN_NP["model"]["channels"])
    model = plan.build().double().eval()
    layers = plan.probe_layers(model)
    assert layers[-1] == "head" and layers[0] == "nfn.blocks.0"
    moved = permute(Weights(template, params.double()), torch.Generator().manual_seed(0)).params
    with gmn.probe(model, layers=layers) as probe:
        states = probe.run(params.double())
        moved_states = probe.run(moved)
    assert all(_kept(name) for name in states)
    assert "nfn.blocks.0/layer_mean" in states
    for name, state in states.items():
        torch.testing.assert_close(moved_states[name], state, rtol=1e-9, atol=1e-9)


def per_layer_standardisation(template, raw):
    """The benchmark's kind of standardisation: one (scale, shift) per state_dict key, [P]
    each, with the shifts far from zero so that a flip of standardised values shows."""
    stacked = Weights(template, raw[:1]).stacked()
    scale = Weights.from_stacked(template, {k: torch.full_like(v, 0.5 + i) for i, (k, v)
                                            in enumerate(stacked.items())}).params[0]
    shift = Weights.from_stacked(template, {k: torch.full_like(v, 0.3 - 0.2 * i) for i, (k, v)
                                            in enumerate(stacked.items())}).params[0]
    return scale, shift


def test_sign_flips_act_on_the_inrs_own_parameters(siren_params):
    """The flips the GMN trains on keep every INR's rendered image, through the exact pipeline
    (standardised parameters in, standardised parameters out); flipping the standardised
    values themselves would change the images."""
    from gmn.data import RandomSignFlip

    template, raw, _ = siren_params
    raw = raw.double()
    scale, shift = per_layer_standardisation(template, raw)
    params, labels = (raw - shift) / scale, torch.arange(len(raw))
    transform = gmn_augmentation(template, (8, 8), 0, False, (scale, shift), sign_flip=True)
    flipped, _ = transform((params, labels), torch.Generator().manual_seed(0))
    assert not torch.allclose(flipped, params), "some neuron was flipped"
    before = render(Weights(template, raw), 8, 8)
    torch.testing.assert_close(render(Weights(template, flipped * scale + shift), 8, 8), before,
                               rtol=0, atol=1e-6)
    wrong = RandomSignFlip()(Weights(template, params), torch.Generator().manual_seed(0)).params
    assert (render(Weights(template, wrong * scale + shift), 8, 8) - before).abs().max() > 0.01
    with pytest.raises(ValueError, match="sign_flip must be true or false"):
        gmn_augmentation(template, (8, 8), 0, False, (scale, shift), sign_flip=1)


def test_a_gmn_reading_canonical_signs_ignores_flips_and_permutations(siren_params):
    """``canonical_signs``: the GMN's logits (float64) are the same for every INR after random
    sign flips (in raw space) and hidden-neuron permutations, drawn together."""
    template, raw, _ = siren_params
    raw = raw.double()
    scale, shift = per_layer_standardisation(template, raw)
    params = (raw - shift) / scale
    options = {"hidden_dim": 8, "canonical_standardization": False, "rank_embedding": False,
               "dropout": 0.0, "canonical_signs": True}
    model = build_gmn(template, 3, params, options, raw_affine=(scale, shift)).double().eval()
    transform = gmn_augmentation(template, (8, 8), 0, True, (scale, shift), sign_flip=True)
    moved, _ = transform((params, torch.arange(len(raw))), torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(moved), model(params), rtol=0, atol=1e-9)
    plain = build_gmn(template, 3, params, {**options, "canonical_signs": False},
                      raw_affine=(scale, shift)).double().eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain(moved), plain(params), atol=1e-4)


def test_function_samples_at_a_few_random_points(siren_params):
    """``query_points``: K seeded random points in [-1, 1]² instead of the pixel grid; the
    output neuron's samples are the INR's values there."""
    template, raw, nets = siren_params
    options = {**split_gmn_config({"hidden_dim": 8, "query_points": 16}, "gmn_probe")[0]}
    model = build_gmn(template, 3, raw, options, (8, 8))
    points = model.graph.points
    assert points.shape == (16, 2) and points.abs().max() <= 1
    assert torch.equal(points, build_gmn(template, 3, raw, options, (8, 8)).graph.points)
    assert not torch.equal(points[:, 0], points[:, 1])
    out_rows = model.graph(raw).x.view(len(raw), template.num_nodes, 5 + 16)[:, -1, 5:]
    with torch.no_grad():
        expected = torch.stack([n(points).squeeze(-1) for n in nets])
    torch.testing.assert_close(out_rows, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="query_points places function samples"):
        build_gmn(template, 3, raw, {"hidden_dim": 8, "query_points": 16}, (8, 8))
