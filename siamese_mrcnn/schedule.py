"""Training schedules as data, and the loop that runs them stage by stage.

A schedule is a list of :class:`Stage`\\ s. Each stage trains ``layers`` (a preset of
``MaskRCNN.train``: "heads", "3+", "4+", "5+", "all", or a regular expression) up to
the *cumulative* epoch ``epochs`` at ``base_lr * lr_factor``, exactly as Matterport's
``train(..., epochs=...)`` counts epochs. The paper's schedule (SPEC section 3)::

    heads  epochs 0 -> 1     lr
    all    epochs 1 -> 120   lr
    all    epochs 120 -> 160 lr / 10

with 1000 steps per epoch and ``lr = 0.02 * global_batch / 12`` (the learning rate
scales linearly with the global batch; the paper used batch 12).

:func:`run_schedule` skips every stage that ends at or before the model's current
epoch (set by ``load_weights`` of a checkpoint), so a resumed run continues in the
middle of the schedule with the stage's own layers and learning rate.

Nothing here imports TensorFlow; the model is duck-typed (``epoch`` and ``train``).
"""

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# The paper's learning rate and the global batch it belongs to (SPEC section 3).
PAPER_LEARNING_RATE = 0.02
PAPER_BATCH_SIZE = 12
# Fraction of the paper's schedule run at the full learning rate (120 of 160 epochs).
PAPER_DECAY_FRACTION = 120 / 160

SCHEDULE_NAMES = ("paper", "quick")


@dataclass(frozen=True)
class Stage:
    """One call of ``model.train``: ``layers`` up to cumulative epoch ``epochs`` at
    ``lr_factor`` times the base learning rate."""

    layers: str
    epochs: int
    lr_factor: float = 1.0

    def to_dict(self):
        return {"layers": self.layers, "epochs": self.epochs, "lr_factor": self.lr_factor}


def validate_schedule(stages):
    """Check a schedule; returns it as a tuple of :class:`Stage`.

    Raises ValueError naming the stage when a stage has no layers, an epoch target
    that is not a positive integer or not above the previous stage's, or a
    non-positive lr_factor.
    """
    stages = tuple(stages)
    if not stages:
        raise ValueError("a schedule needs at least one stage")
    previous = 0
    for i, stage in enumerate(stages):
        where = f"schedule stage {i} ({stage})"
        if not isinstance(stage.layers, str) or not stage.layers:
            raise ValueError(f"{where}: layers must be a non-empty preset name or regex")
        if isinstance(stage.epochs, bool) or not isinstance(stage.epochs, int) \
                or stage.epochs < 1:
            raise ValueError(f"{where}: epochs must be a positive integer")
        if stage.epochs <= previous:
            raise ValueError(f"{where}: epochs must increase from stage to stage (they are "
                             f"cumulative targets); previous stage ends at {previous}")
        if not stage.lr_factor > 0:
            raise ValueError(f"{where}: lr_factor must be positive")
        previous = stage.epochs
    return stages


def paper_schedule():
    """The paper's three stages: heads to epoch 1, all to 120, all to 160 at lr/10."""
    return validate_schedule([Stage("heads", 1, 1.0), Stage("all", 120, 1.0),
                              Stage("all", 160, 0.1)])


def quick_schedule(epochs, heads_epochs=1):
    """The paper's schedule shrunk to ``epochs`` epochs, for small runs.

    Stages: "heads" to epoch ``heads_epochs``; "all" at the full learning rate to
    epoch ``round(0.75 * epochs)`` (the paper's 120 of 160); "all" at lr/10 to
    ``epochs``. Stages that would train no epoch are left out, so
    ``quick_schedule(1)`` is a single heads epoch, ``quick_schedule(4)`` is heads
    0->1, all 1->3, all/10 3->4, and ``quick_schedule(160)`` equals
    :func:`paper_schedule`.

    Raises ValueError when ``epochs`` < 1 or ``heads_epochs`` is not in 0..epochs.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"quick schedule: epochs must be a positive integer, got {epochs!r}")
    if isinstance(heads_epochs, bool) or not isinstance(heads_epochs, int) \
            or not 0 <= heads_epochs <= epochs:
        raise ValueError(f"quick schedule: heads epochs must be an integer in 0..{epochs}, "
                         f"got {heads_epochs!r}")
    # Python's round() rounds halves to even; floor(x + 0.5) keeps 0.75 * 2 -> 2.
    decay_at = max(heads_epochs, int(PAPER_DECAY_FRACTION * epochs + 0.5))
    candidates = [Stage("heads", heads_epochs, 1.0), Stage("all", decay_at, 1.0),
                  Stage("all", epochs, 0.1)]
    stages, previous = [], 0
    for stage in candidates:
        if stage.epochs > previous:
            stages.append(stage)
            previous = stage.epochs
    return validate_schedule(stages)


def make_schedule(name, epochs=None, heads_epochs=1):
    """Schedule by name: "paper" (``epochs`` must be None or 160) or "quick"
    (``epochs`` required)."""
    if name == "paper":
        if epochs not in (None, 160):
            raise ValueError(f"the paper schedule has 160 epochs; use the quick schedule "
                             f"for {epochs} epochs")
        return paper_schedule()
    if name == "quick":
        if epochs is None:
            raise ValueError("the quick schedule needs a number of epochs")
        return quick_schedule(epochs, heads_epochs)
    raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULE_NAMES)}")


def scaled_learning_rate(global_batch, base_lr=PAPER_LEARNING_RATE,
                         base_batch=PAPER_BATCH_SIZE):
    """Learning rate for ``global_batch`` images per step, linear in the batch:
    ``base_lr * global_batch / base_batch`` (0.02 at 12, 0.005 at 3)."""
    if isinstance(global_batch, bool) or not isinstance(global_batch, int) or global_batch < 1:
        raise ValueError(f"global batch must be a positive integer, got {global_batch!r}")
    return base_lr * global_batch / base_batch


def remaining_stages(stages, epoch):
    """The stages still to run from ``epoch`` on: those ending after it."""
    return [s for s in validate_schedule(stages) if s.epochs > epoch]


def run_schedule(model, train_dataset, val_dataset, schedule, base_lr, augmentation=None,
                 custom_callbacks=None, seed=None, verbose=1, **train_kwargs):
    """Train ``model`` through the stages of ``schedule`` that are not done yet.

    Args:
        model: a ``MaskRCNN`` (or subclass) in training mode; ``model.epoch`` is the
            number of epochs already done (0, or a loaded checkpoint's epoch).
        train_dataset, val_dataset: prepared datasets (val may be None).
        schedule: sequence of :class:`Stage`.
        base_lr: learning rate of a stage with lr_factor 1.
        augmentation, custom_callbacks, seed, verbose: passed to ``model.train``, as
            are ``train_kwargs`` (e.g. the Siamese model's ``active_class_ids``).
    Returns:
        list of (stage, learning rate, Keras History) for the stages run.
    """
    if not base_lr > 0:
        raise ValueError(f"base learning rate must be positive, got {base_lr!r}")
    todo = remaining_stages(schedule, model.epoch)
    if not todo:
        logger.warning("the model is at epoch %d: every stage of the schedule (last ends at "
                       "epoch %d) is done", model.epoch, tuple(schedule)[-1].epochs)
    done = []
    for stage in todo:
        lr = base_lr * stage.lr_factor
        logger.info("schedule stage: %s from epoch %d to %d at lr %g", stage.layers,
                    model.epoch, stage.epochs, lr)
        history = model.train(train_dataset, val_dataset, learning_rate=lr,
                              epochs=stage.epochs, layers=stage.layers,
                              augmentation=augmentation, custom_callbacks=custom_callbacks,
                              seed=seed, verbose=verbose, **train_kwargs)
        done.append((stage, lr, history))
    return done
