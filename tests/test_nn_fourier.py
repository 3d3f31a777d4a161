"""`ScalarFourierFeatures`: the encoding of each raw scalar, against its formula."""

import math

import pytest
import torch

from gmn.nn.fourier import ScalarFourierFeatures


def test_features_match_the_formula_column_by_column():
    encoding = ScalarFourierFeatures(2, 3, min_frequency=1.0, max_frequency=100.0).double()
    x = torch.tensor([[0.5, -2.0], [0.0, 1e-3]], dtype=torch.float64)
    omegas = [1.0, 10.0, 100.0]  # log-spaced: 1, sqrt(1 * 100) ** 1, 100
    expected = [
        [*row, *(math.sin(w * v) for v in row for w in omegas),
         *(math.cos(w * v) for v in row for w in omegas)]
        for row in x.tolist()
    ]
    out = encoding(x)
    assert encoding.out_dim == 2 * (1 + 2 * 3) == out.shape[1]
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64),
                               rtol=1e-12, atol=1e-12)


def test_rows_are_encoded_independently():
    """Permuting rows permutes the encoding: the property the GMN's invariance rests on."""
    encoding = ScalarFourierFeatures(3, 5, 0.5, 300.0).double()
    x = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    order = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(encoding(x[order]), encoding(x)[order], rtol=0, atol=0)


def test_zero_frequencies_is_the_identity_and_bad_ranges_raise():
    x = torch.randn(4, 2)
    assert torch.equal(ScalarFourierFeatures(2, 0)(x), x)
    with pytest.raises(ValueError, match="min_frequency"):
        ScalarFourierFeatures(2, 4, min_frequency=10.0, max_frequency=1.0)
