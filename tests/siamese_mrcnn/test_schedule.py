"""Training schedules: the paper's stages, the quick variant, lr scaling and resuming.

``run_schedule`` is exercised with a recording stand-in for ``MaskRCNN`` that keeps
Matterport's epoch semantics (``train`` advances ``epoch`` to the cumulative target),
so these tests need no TensorFlow.
"""

import pytest

from siamese_mrcnn.schedule import (Stage, make_schedule, paper_schedule, quick_schedule,
                                    remaining_stages, run_schedule, scaled_learning_rate,
                                    validate_schedule)


class RecordingModel:
    """Records ``train`` calls; ``epoch`` advances like MaskRCNN.train's."""

    def __init__(self, epoch=0):
        self.epoch = epoch
        self.calls = []

    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers,
              augmentation=None, custom_callbacks=None, seed=None, verbose=1):
        self.calls.append({"from": self.epoch, "to": epochs, "lr": learning_rate,
                           "layers": layers, "seed": seed, "data": (train_dataset, val_dataset)})
        self.epoch = max(self.epoch, epochs)
        return f"history {len(self.calls)}"


def test_paper_schedule_is_the_published_one():
    assert paper_schedule() == (Stage("heads", 1, 1.0), Stage("all", 120, 1.0),
                                Stage("all", 160, 0.1))


@pytest.mark.parametrize("batch, lr", [(12, 0.02), (3, 0.005), (1, 0.02 / 12), (24, 0.04)])
def test_learning_rate_is_linear_in_the_global_batch(batch, lr):
    assert scaled_learning_rate(batch) == pytest.approx(lr, rel=1e-12)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_learning_rate_rejects_a_bad_batch(bad):
    with pytest.raises(ValueError, match="global batch"):
        scaled_learning_rate(bad)


@pytest.mark.parametrize("epochs, heads, expected", [
    (1, 1, [("heads", 1, 1.0)]),
    (2, 1, [("heads", 1, 1.0), ("all", 2, 1.0)]),
    (4, 1, [("heads", 1, 1.0), ("all", 3, 1.0), ("all", 4, 0.1)]),
    (10, 2, [("heads", 2, 1.0), ("all", 8, 1.0), ("all", 10, 0.1)]),
    (3, 0, [("all", 2, 1.0), ("all", 3, 0.1)]),
    (1, 0, [("all", 1, 1.0)]),
    (8, 8, [("heads", 8, 1.0)]),
])
def test_quick_schedule_by_hand(epochs, heads, expected):
    assert [(s.layers, s.epochs, s.lr_factor) for s in quick_schedule(epochs, heads)] == expected


def test_quick_schedule_of_160_epochs_is_the_paper_schedule():
    assert quick_schedule(160, 1) == paper_schedule()


@pytest.mark.parametrize("epochs, heads", [(0, 0), (3, 4), (3, -1), (2.0, 1)])
def test_quick_schedule_rejects_bad_arguments(epochs, heads):
    with pytest.raises(ValueError, match="quick schedule"):
        quick_schedule(epochs, heads)


def test_make_schedule_by_name():
    assert make_schedule("paper") == paper_schedule()
    assert make_schedule("quick", 4) == quick_schedule(4)
    with pytest.raises(ValueError, match="needs a number of epochs"):
        make_schedule("quick")
    with pytest.raises(ValueError, match="paper schedule has 160 epochs"):
        make_schedule("paper", 12)
    with pytest.raises(ValueError, match="unknown schedule 'fast'"):
        make_schedule("fast", 3)


@pytest.mark.parametrize("stages, message", [
    ([], "at least one stage"),
    ([Stage("heads", 2), Stage("all", 2)], "must increase"),
    ([Stage("all", 0)], "positive integer"),
    ([Stage("", 3)], "non-empty"),
    ([Stage("all", 3, 0.0)], "lr_factor"),
])
def test_validate_schedule_names_the_bad_stage(stages, message):
    with pytest.raises(ValueError, match=message):
        validate_schedule(stages)


def test_run_schedule_from_scratch_runs_every_stage_at_its_lr():
    model = RecordingModel()
    done = run_schedule(model, "train", "val", paper_schedule(), base_lr=0.005, seed=7)
    assert [(c["layers"], c["from"], c["to"]) for c in model.calls] == [
        ("heads", 0, 1), ("all", 1, 120), ("all", 120, 160)]
    assert [c["lr"] for c in model.calls] == pytest.approx([0.005, 0.005, 0.0005])
    assert all(c["seed"] == 7 and c["data"] == ("train", "val") for c in model.calls)
    assert [(s.epochs, lr, h) for s, lr, h in done] == [
        (1, 0.005, "history 1"), (120, 0.005, "history 2"), (160, pytest.approx(0.0005),
                                                           "history 3")]
    assert model.epoch == 160


@pytest.mark.parametrize("start, expected", [
    (1, [("all", 1, 120, 1.0), ("all", 120, 160, 0.1)]),      # at a stage boundary
    (57, [("all", 57, 120, 1.0), ("all", 120, 160, 0.1)]),    # mid-stage
    (130, [("all", 130, 160, 0.1)]),
])
def test_a_resumed_run_continues_mid_schedule(start, expected):
    model = RecordingModel(epoch=start)
    run_schedule(model, "train", None, paper_schedule(), base_lr=0.02)
    assert [(c["layers"], c["from"], c["to"], c["lr"] / 0.02) for c in model.calls] == [
        (layers, a, b, pytest.approx(f)) for layers, a, b, f in expected]


def test_a_finished_run_trains_nothing():
    model = RecordingModel(epoch=160)
    assert run_schedule(model, "train", None, paper_schedule(), base_lr=0.02) == []
    assert model.calls == []
    assert remaining_stages(paper_schedule(), 200) == []


def test_run_schedule_rejects_a_non_positive_lr():
    with pytest.raises(ValueError, match="learning rate must be positive"):
        run_schedule(RecordingModel(), "train", None, paper_schedule(), base_lr=0.0)
