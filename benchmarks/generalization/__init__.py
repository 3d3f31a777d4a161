"""Predicting a CNN's test accuracy from its weights (Unterthiner et al. 2020; NG's CNN Wild
Park): a GMN, per-layer weight statistics + gradient boosting, and an MLP on flattened weights,
on a homogeneous split and a mixed split with held-out architectures. See docs/zoo.md."""
