"""The accuracy and overlap figure: every tick label readable, none over another, all inside
the figure, for the default run's six families and seven pairings."""


from benchmarks.inr_classification.plots import accuracy_overlap_figure

FAMILIES = ["gmn", "mlp", "cnn", "weight_mlp", "vit", "gmn_probe"]
PAIRINGS = ["gmn-mlp", "gmn-cnn", "gmn-vit", "gmn_probe-mlp", "gmn_probe-cnn", "gmn_probe-vit",
            "cnn-cnn"]


def results() -> dict:
    overlap = {"n": 359, "both_right": 340, "only_a": 9, "only_b": 4, "both_wrong": 6}
    return {
        "families": FAMILIES,
        "accuracy": {f: {"mean": 0.9, "std": 0.01, "values": [0.89, 0.9, 0.91]}
                     for f in FAMILIES},
        "overlap": {name: [overlap] * 3 for name in PAIRINGS},
    }


def test_tick_labels_do_not_overlap_and_stay_inside_the_figure():
    import matplotlib.pyplot as plt

    figure = accuracy_overlap_figure(results())
    renderer = figure.canvas.get_renderer()
    page = figure.bbox
    try:
        named = (figure.axes[0].get_xticklabels(), figure.axes[1].get_yticklabels())
        for labels in named:  # the families and the pairings (the other axes are numbers)
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            assert len(boxes) in (len(FAMILIES), len(PAIRINGS))
            for i, (name, box) in enumerate(boxes):
                assert page.x0 <= box.x0 and box.x1 <= page.x1, name
                assert page.y0 <= box.y0 and box.y1 <= page.y1, name
                for other, other_box in boxes[i + 1:]:
                    assert not box.overlaps(other_box), (name, other)
        pairings = [t.get_text() for t in figure.axes[1].get_yticklabels()]
        assert pairings == [p.replace("-", " vs ") for p in PAIRINGS]
    finally:
        plt.close(figure)
