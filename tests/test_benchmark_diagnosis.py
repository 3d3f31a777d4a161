"""benchmarks/weights_only_diagnosis.py runs end to end on a few real digits INRs."""

from __future__ import annotations

import json

from benchmarks.weights_only_diagnosis import main


def test_training_with_permutations_runs_and_reports(tmp_path, capsys):
    main(["--data", "--limit 60", "--out", str(tmp_path), "--epochs", "1", "--bs", "16",
          "--permute", "--label-smoothing", "0.1", "--mixup", "0.5", "--noise", "0.1",
          "--sign-flip", "--canonical-signs",
          "--opts", '{"hidden_dim": 8, "edge_dim": 8, "readout": ["node_mean", "edge_bilinear"]}'])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["permute"] and report["sign_flip"] and report["label_smoothing"] == 0.1
    assert report["mixup"] == 0.5 and report["noise"] == 0.1
    assert 0.0 <= report["test_at_best_val"] <= 1.0 and report["best_epoch"] == 0
    assert report["canonical_signs"]
    assert all(len(epoch) == 2 for epoch in report["history_train_loss_val"]), \
        "no test accuracy before the end: the model is selected on validation alone"


def test_the_image_target_reports_r2_on_held_out_images(tmp_path, capsys):
    main(["--data", "--limit 60 --views 2", "--out", str(tmp_path), "--epochs", "2",
          "--bs", "16", "--target", "image",
          "--opts", '{"hidden_dim": 8, "edge_dim": 8, "readout": ["node_mean"]}'])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["target"] == "image" and report["training_inrs"] == 2 * 42
    assert report["test_at_best_val"] <= 1.0 and len(report["history_train_loss_val"]) == 2


def test_ridge_image_r2_knows_a_linear_image_from_noise():
    import torch

    from benchmarks.weights_only_diagnosis import ridge_image_r2

    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(120, 16, generator=generator)
    split = {"train": torch.arange(80), "val": torch.arange(80, 100),
             "test": torch.arange(100, 120)}
    mixing = torch.randn(16, 30, generator=generator)
    assert ridge_image_r2(pixels @ mixing, pixels, split) > 0.99  # the image is linear in them
    assert ridge_image_r2(torch.randn(120, 30, generator=generator), pixels, split) < 0.05


def test_movement_is_measured_from_each_inrs_own_initialisation(tmp_path, capsys):
    """One Adam step of 1e-3 moves each weight by at most about 1e-3: relative to the layer
    (weights of order 0.1-0.7) the movement is small but not zero."""
    main(["--init", "independent", "--data", "--limit 30 --inr-steps 1", "--out",
          str(tmp_path), "--spread"])
    moved = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[
        "moved_from_own_initialisation"]
    assert set(moved) == {f"seq.{i}.{k}" for i in range(3) for k in ("weight", "bias")}
    assert all(0 < value < 0.02 for value in moved.values()), moved
