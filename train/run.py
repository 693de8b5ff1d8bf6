"""One training run: checks -> data -> vocabulary -> fit (resumable) -> test evaluation -> artifacts.

The checks (settings, ``--out`` folder, dataset, checkpoint fingerprint) run before TensorFlow is imported.
"""

from __future__ import annotations

import csv
import logging
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from edge_infer.storage import temp_path_beside
from edge_infer.tokenizer import NORMALIZATION, OOV_ID, PAD_ID, Tokenizer, build_vocabulary
from train.checkpoint import BACKUP_DIR, ELAPSED_FILE, HISTORY_FILE, ResumeState, fingerprint, resume_state, start_fresh
from train.data import Split, stratified_indices, subset, train_validation_split
from train.outdir import CHECKPOINT_DIR, MODEL_FILE, PLOT_FILE, VOCAB_FILE, check_output, clear_output
from train.presets import Settings, SettingsError
from train.report import REPORT_FILE, DataInfo, TokenizerSpec, TrainingReport, VocabularyInfo
from train.sources import Dataset, SourceSpec, balanced_weights, class_counts, load_dataset

log = logging.getLogger(__name__)

GRU_WARNING = ("warning: --cell gru trains a model that cannot be exported: `python -m export` only handles a "
               "bidirectional LSTM and refuses it (training it anyway)")


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_epoch = {int(r["epoch"]) + 1: {k: float(v) for k, v in r.items() if k != "epoch"} for r in rows}
    return [{"epoch": e, **by_epoch[e]} for e in sorted(by_epoch)]


def _save_plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [h[metric] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    tmp = temp_path_beside(path)
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)


def _splits(data: Dataset, settings: Settings) -> tuple[Split, Split, Split]:
    """(fit, validation, test): the seeded stratified subsets of ``--max-samples``, then the hold-out.

    aclImdb sentiment draws equal shares per class (as it always did); other sources draw in proportion.
    """
    draw = {"classes": len(data.labels), "proportional": not data.equal_draws}
    train_split, test_split = data.train, data.test
    if settings.max_samples:
        train_split = subset(train_split, stratified_indices(train_split.labels, settings.max_samples, settings.seed,
                                                             **draw))
        test_split = subset(test_split, stratified_indices(test_split.labels, settings.max_samples, settings.seed,
                                                           **draw))
    fit_split, val_split = train_validation_split(train_split, settings.validation_fraction, settings.seed, **draw)
    return fit_split, val_split, test_split


def _save_model(model, settings: Settings, path: Path, classes: int) -> None:
    """Save without optimizer state: an uncompiled twin carrying the trained weights."""
    from train.model import build_model

    inference = build_model(settings, compile=False, classes=classes)
    inference.set_weights(model.get_weights())
    tmp = temp_path_beside(path)
    try:
        inference.save(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _open_run(spec: SourceSpec, out: Path, settings: Settings, preset: str, restart: bool,
              force: bool, class_weight: str | None) -> tuple[Dataset, ResumeState | None]:
    """Every check that can refuse the run (no TensorFlow), then ``out`` made ready: export files removed
    (``force``), and the checkpoint either kept to resume or replaced by a fresh one."""
    settings.check()
    plan = check_output(out, force=force)
    if settings.cell == "gru":
        log.warning(GRU_WARNING)
    data = load_dataset(spec, settings.seed)
    checkpoints = out / CHECKPOINT_DIR
    extra = {**data.fingerprint, **({"class_weight": class_weight} if class_weight else {})}
    wanted = fingerprint(settings, preset, data.sha256, extra)
    resume = resume_state(checkpoints, wanted, restart=restart)
    for line in clear_output(plan):
        log.info(line)
    if resume is not None:
        log.info("resuming the interrupted run from %s after epoch %d", checkpoints, resume.epoch)
        return data, resume
    if restart and checkpoints.exists():
        log.info("--restart: discarding the checkpoint in %s", checkpoints)
    start_fresh(checkpoints, wanted)
    return data, None


def _fit(settings: Settings, fit: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
         checkpoints: Path, resume: ResumeState | None, started: float, classes: int = 2,
         sample_weights: np.ndarray | None = None):
    """Build (or restore) and fit the model; it ends with the best epoch's weights.

    ``sample_weights``: each fit row's loss weight (``--class-weight``), or None.

    Returns (model, EarlyStop, TrainingClock).
    """
    import keras

    from train.callbacks import Checkpoint, EarlyStop, EpochBatches, ShuffleEachEpoch, TrainingClock, restore
    from train.model import build_model

    keras.utils.set_random_seed(settings.seed)
    model = build_model(settings, classes=classes)
    if resume is not None:
        restore(model, resume)
    early_stop = EarlyStop(settings.patience, resume)
    batches = EpochBatches(*fit, settings.batch_size, settings.seed, sample_weights)
    clock = TrainingClock(checkpoints / ELAPSED_FILE, started)
    # Order matters: the epoch's history row is flushed, and EarlyStop decides, before Checkpoint commits
    # the epoch; a run killed before the commit redoes the epoch (and rewrites its history row).
    callbacks = [
        keras.callbacks.CSVLogger(str(checkpoints / HISTORY_FILE), append=True),
        clock,
        ShuffleEachEpoch(batches),
        early_stop,
        Checkpoint(checkpoints / BACKUP_DIR, early_stop),
    ]
    initial_epoch = 0 if resume is None else settings.epochs if early_stop.stopped else resume.epoch
    model.fit(
        batches, validation_data=validation, epochs=settings.epochs, initial_epoch=initial_epoch,
        shuffle=False,  # EpochBatches shuffles, by (seed, epoch): Keras' own shuffle would not survive a resume
        callbacks=callbacks, verbose=1 if sys.stderr.isatty() else 2,
    )
    return model, early_stop, clock


def _weights(data: Dataset, fit_split: Split, class_weight: str | None
             ) -> tuple[dict[str, float] | None, np.ndarray | None]:
    """(label -> weight, per-row weights) for ``--class-weight balanced``; (None, None) without it."""
    if class_weight is None:
        return None, None
    weights = balanced_weights(fit_split, data.labels)
    per_class = np.array([weights[name] for name in data.labels], dtype=np.float32)
    return weights, per_class[fit_split.labels]


def _data_info(data: Dataset, fit_split: Split, val_split: Split, test_split: Split) -> DataInfo:
    counts = {name: class_counts(split, data.labels)
              for name, split in (("fit", fit_split), ("validation", val_split), ("test", test_split))}
    return DataInfo(path=data.path, sha256=data.sha256, train_reviews=len(fit_split),
                    validation_reviews=len(val_split), test_reviews=len(test_split), sources=data.sources,
                    text_field=data.text_field, label_field=data.label_field, test_split=data.test_split,
                    class_counts=counts)


def train(data_path: str | Path | SourceSpec, out_dir: str | Path, settings: Settings, preset: str, *,
          restart: bool = False, force: bool = False, class_weight: str | None = None) -> TrainingReport:
    """Run the whole stage and return the training report (also written to ``out_dir``).

    ``data_path`` is a path (aclImdb, CSV, JSONL, folder per label; default fields) or a
    :class:`~train.sources.SourceSpec`. ``class_weight``: None or ``"balanced"``.

    Everything that can refuse the run (settings, ``out_dir``, dataset, a checkpoint of other settings) is
    checked before TensorFlow is imported. ``restart`` discards a checkpoint instead of resuming it;
    ``force`` trains into a folder holding an exported model or foreign files (see ``train.outdir``).
    """
    started = time.time()
    out = Path(out_dir)
    spec = data_path if isinstance(data_path, SourceSpec) else SourceSpec(Path(data_path))
    if class_weight not in (None, "balanced"):
        raise SettingsError(f"--class-weight must be balanced, not {class_weight!r}")
    data, resume = _open_run(spec, out, settings, preset, restart, force, class_weight)
    checkpoints = out / CHECKPOINT_DIR

    fit_split, val_split, test_split = _splits(data, settings)
    log.info("labels %s; rows: %d fit, %d validation, %d test", ", ".join(data.labels), len(fit_split),
             len(val_split), len(test_split))
    weights, row_weights = _weights(data, fit_split, class_weight)
    vocabulary = build_vocabulary(fit_split.texts, settings.vocab_size)
    tokenizer = Tokenizer(vocabulary, settings.max_len, settings.padding, settings.truncating)
    x_val = tokenizer.encode(val_split.texts)
    model, early_stop, clock = _fit(settings, (tokenizer.encode(fit_split.texts), fit_split.labels),
                                    (x_val, val_split.labels), checkpoints, resume, started, len(data.labels),
                                    row_weights)

    # The test split is read once, here, for the reported figure. Both figures are the kept weights'.
    test_loss, test_accuracy = model.evaluate(tokenizer.encode(test_split.texts), test_split.labels,
                                              batch_size=256, verbose=0)
    val_loss, val_accuracy = model.evaluate(x_val, val_split.labels, batch_size=256, verbose=0)

    # The old report goes first: a folder never pairs a new model with the previous run's report.
    (out / REPORT_FILE).unlink(missing_ok=True)
    _save_model(model, settings, out / MODEL_FILE, len(data.labels))
    history = _read_history(checkpoints / HISTORY_FILE)
    report = TrainingReport(
        preset=preset,
        settings=settings.to_dict(),
        labels=data.labels,
        threshold=0.5,
        tokenizer=TokenizerSpec(normalization=NORMALIZATION, max_len=settings.max_len, padding=settings.padding,
                                truncating=settings.truncating, pad_id=PAD_ID, oov_id=OOV_ID,
                                vocab_size=len(vocabulary)),
        vocabulary=VocabularyInfo(file=VOCAB_FILE, sha256=vocabulary.save(out / VOCAB_FILE), size=len(vocabulary)),
        data=_data_info(data, fit_split, val_split, test_split),
        history=tuple(history),
        best_epoch=early_stop.best_epoch,
        validation_accuracy=float(val_accuracy),
        validation_loss=float(val_loss),
        test_accuracy=float(test_accuracy),
        test_loss=float(test_loss),
        wall_time_s=round(clock.earlier_s + time.time() - started, 1),
        resumed=resume is not None,
        versions=_versions(),
        class_weights=weights,
    )
    report.save(out / REPORT_FILE)
    if history:
        _save_plot(history, out / PLOT_FILE)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return report
