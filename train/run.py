"""One training run: checks -> data -> vocabulary -> fit (resumable) -> test evaluation -> artifacts.

The checks (settings, ``--out`` folder, dataset, checkpoint fingerprint) run before TensorFlow is imported.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_infer.model_folder import TokenizerSpec
from edge_infer.storage import temp_path_beside
from edge_infer.tokenizer import NORMALIZATION, OOV_ID, PAD_ID, Tokenizer, build_vocabulary
from train.artifacts import read_history as _read_history
from train.artifacts import save_plot as _save_plot
from train.artifacts import versions as _versions
from train.checkpoint import BACKUP_DIR, ELAPSED_FILE, HISTORY_FILE, ResumeState, fingerprint, resume_state, start_fresh
from train.data import DataError, Split, stratified_indices, subset, train_validation_split
from train.mixture import load_mixture
from train.movies import movie_hold_out, review_movies
from train.outdir import CHECKPOINT_DIR, MODEL_FILE, PLOT_FILE, VOCAB_FILE, check_output, clear_output
from train.presets import Settings, SettingsError
from train.pretrain import PretrainedEncoder, check_compatible, load_pretrained
from train.report import REPORT_FILE, DataInfo, TrainingReport, VocabularyInfo
from train.sources import Dataset, SourceSpec, balanced_weights, class_counts, load_dataset
from train.unlabeled import Unlabeled, load_unlabeled

log = logging.getLogger(__name__)

def resolve_validation(settings: Settings, data: Dataset) -> Settings:
    """``--validation auto`` made concrete: movie for a source that names each review's movie, else random."""
    if settings.validation != "auto":
        return settings
    return replace(settings, validation="movie" if data.train_members is not None else "random")


def _splits(data: Dataset, settings: Settings) -> tuple[Split, Split, Split]:
    """(fit, validation, test): the seeded stratified subsets of ``--max-samples``, then the hold-out.

    aclImdb sentiment draws equal shares per class (as it always did); other sources draw in proportion.
    ``--validation movie`` holds out whole movies instead (aclImdb only).
    """
    settings = resolve_validation(settings, data)
    draw = {"classes": len(data.labels), "proportional": not data.equal_draws}
    train_split, test_split = data.train, data.test
    movies = None
    if settings.validation == "movie":
        if data.train_members is None:
            raise DataError(f"{data.path}: --validation movie needs aclImdb (its urls_*.txt name each review's "
                            "movie); use --validation random")
        movies = review_movies(data.path, "train", list(data.train_members))
    if settings.max_samples:
        chosen = stratified_indices(train_split.labels, settings.max_samples, settings.seed, **draw)
        train_split = subset(train_split, chosen)
        movies = None if movies is None else [movies[i] for i in chosen]
        test_split = subset(test_split, stratified_indices(test_split.labels, settings.max_samples, settings.seed,
                                                           **draw))
    if movies is not None:
        fit_rows, held_rows = movie_hold_out(train_split, movies, settings.validation_fraction, settings.seed,
                                             len(data.labels))
        return subset(train_split, fit_rows), subset(train_split, held_rows), test_split
    fit_split, val_split = train_validation_split(train_split, settings.validation_fraction, settings.seed, **draw)
    return fit_split, val_split, test_split


def _save_model(model, settings: Settings, path: Path, classes: int, combined: bool = False) -> None:
    """Save without optimizer state: an uncompiled twin carrying the trained weights (a combined model has
    none: it is saved as built)."""
    from train.model import build_model

    if combined:
        import keras

        # A fresh uncompiled copy: the saved file carries no compile or optimizer settings.
        inference = keras.Model.from_config(model.get_config())
        inference.set_weights(model.get_weights())
    else:
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
              force: bool, class_weight: str | None, encoder_sha256: str | None = None,
              unlabeled: str | Path | None = None) -> tuple[Dataset, ResumeState | None, Unlabeled | None]:
    """Every check that can refuse the run (no TensorFlow), then ``out`` made ready: export files removed
    (``force``), and the checkpoint either kept to resume or replaced by a fresh one.

    Returns the dataset, the checkpoint to resume (or None) and the ``unlabeled`` reviews (or None)."""
    settings.check()
    plan = check_output(out, force=force)
    data = load_mixture(spec, settings.seed) if spec.mix is not None else load_dataset(spec, settings.seed)
    if settings.bag_dim and len(data.labels) != 2:
        raise SettingsError(f"--bag-dim mixes two logits: it needs two labels, not {len(data.labels)}")
    if unlabeled is not None and len(data.labels) != 2:
        raise SettingsError(f"--unlabeled distils a two-label teacher: it needs two labels, not {len(data.labels)}")
    reviews = load_unlabeled(unlabeled, data.test.texts) if unlabeled is not None else None
    checkpoints = out / CHECKPOINT_DIR
    extra = {**data.fingerprint, **({"class_weight": class_weight} if class_weight else {}),
             **({"pretrained_encoder": encoder_sha256} if encoder_sha256 else {}),
             **({"unlabeled_sha256": reviews.sha256} if reviews is not None else {})}
    wanted = fingerprint(settings, preset, data.sha256, extra)
    resume = resume_state(checkpoints, wanted, restart=restart)
    for line in clear_output(plan):
        log.info(line)
    if resume is not None:
        log.info("resuming the interrupted run from %s after epoch %d", checkpoints, resume.epoch)
        return data, resume, reviews
    if restart and checkpoints.exists():
        log.info("--restart: discarding the checkpoint in %s", checkpoints)
    start_fresh(checkpoints, wanted)
    return data, None, reviews


def _fit(settings: Settings, fit: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
         checkpoints: Path, resume: ResumeState | None, started: float, classes: int = 2,
         sample_weights: np.ndarray | None = None, encoder: PretrainedEncoder | None = None):
    """Build (or restore) and fit the model; it ends with the best epoch's weights.

    ``sample_weights``: each fit row's loss weight (``--class-weight``), or None.

    Returns (model, EarlyStop, TrainingClock).
    """
    import keras

    from train.callbacks import (
        Checkpoint,
        EarlyStop,
        EpochBatches,
        LengthBatches,
        ShuffleEachEpoch,
        TrainingClock,
        restore,
    )
    from train.model import build_model

    keras.utils.set_random_seed(settings.seed)
    model = build_model(settings, classes=classes)
    if resume is not None:
        restore(model, resume)
    elif encoder is not None:
        for name, weights in encoder.weights().items():
            model.get_layer(name).set_weights(weights)
    early_stop = EarlyStop(settings.patience, resume)
    if settings.bucket_by_length:
        batches: EpochBatches = LengthBatches(*fit, settings.batch_size, settings.seed, sample_weights)
        train_data, validation = batches.dataset(), LengthBatches(*validation, 256, settings.seed,
                                                                  shuffle=False).dataset()
    else:
        batches = EpochBatches(*fit, settings.batch_size, settings.seed, sample_weights)
        train_data = batches
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
        train_data, validation_data=validation, epochs=settings.epochs, initial_epoch=initial_epoch,
        shuffle=False,  # EpochBatches shuffles, by (seed, epoch): Keras' own shuffle would not survive a resume
        callbacks=callbacks, verbose=1 if sys.stderr.isatty() else 2,
    )
    return model, early_stop, clock


def _add_bag(settings: Settings, bilstm, fit: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray]):
    """Train the n-gram bag on the same rows, choose the mixing weight on validation log loss, and return
    (combined model, bag model, weight)."""
    import keras

    from train.bag import build_bag_model
    from train.model import combined_model

    keras.utils.set_random_seed(settings.seed)
    bag = build_bag_model(settings.vocab_size, settings.bag_dim, settings.bag_buckets)
    stop = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    bag.fit(*fit, validation_data=validation, epochs=30, batch_size=settings.batch_size, callbacks=[stop],
            verbose=1 if sys.stderr.isatty() else 2)
    logits = [_logit(part.predict(validation[0], batch_size=256, verbose=0)[:, 0]) for part in (bilstm, bag)]
    weight, loss = mix_weight(logits[0], logits[1], validation[1])
    log.info("n-gram bag mixed in with weight %.2f for the BiLSTM (validation log loss %.4f)", weight, loss)
    combined = combined_model(bilstm, bag, weight)  # saved as it is: uncompiled
    combined.compile(loss="binary_crossentropy", metrics=["accuracy"])  # for evaluate(); no optimizer state
    return combined, bag, weight


def _with_soft_targets(settings: Settings, fit: tuple[np.ndarray, np.ndarray],
                       validation: tuple[np.ndarray, np.ndarray], x_extra: np.ndarray, extra: Unlabeled
                       ) -> tuple[tuple[np.ndarray, np.ndarray], dict]:
    """Fit the teacher on ``fit``; return (fit rows + unlabelled rows with the teacher's probabilities, the
    report's distillation entry)."""
    from train.teacher import fit_teacher, soft_targets

    teacher, figures = fit_teacher(fit, validation, settings.seed, verbose=1 if sys.stderr.isatty() else 2)
    soft = soft_targets(teacher, x_extra)
    log.info("teacher: validation accuracy %.4f; soft targets for %d unlabelled reviews (mean %.3f)",
             figures["validation_accuracy"], len(soft), float(soft.mean()))
    rows = (np.concatenate([fit[0], x_extra]), np.concatenate([fit[1].astype(np.float32), soft]))
    info = {"teacher": "n-gram logistic regression (train/teacher.py)", **{f"teacher_{k}": v for k, v in
                                                                           figures.items()},
            "unlabeled": {"path": extra.path, "sha256": extra.sha256, "reviews": len(extra.texts),
                          "dropped_test_copies": extra.dropped_test_copies}}
    return rows, info


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def log_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against 0/1 ``labels``."""
    p = np.clip(1.0 / (1.0 + np.exp(-logits)), 1e-7, 1 - 1e-7)
    truth = labels.astype(np.float64)
    return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))


def mix_weight(first: np.ndarray, second: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(w, log loss): the w in 0, 0.05, ..., 1 whose ``w * first + (1 - w) * second`` has the lowest log loss."""
    weight = min((round(w, 2) for w in np.arange(0.0, 1.0001, 0.05)),
                 key=lambda w: log_loss(w * first + (1 - w) * second, labels))
    return weight, log_loss(weight * first + (1 - weight) * second, labels)


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
          restart: bool = False, force: bool = False, class_weight: str | None = None,
          pretrained: str | Path | None = None, unlabeled: str | Path | None = None) -> TrainingReport:
    """Run the whole stage and return the training report (also written to ``out_dir``).

    ``data_path`` is a path (aclImdb, CSV, JSONL, folder per label; default fields) or a
    :class:`~train.sources.SourceSpec`. ``class_weight``: None or ``"balanced"``.

    Everything that can refuse the run (settings, ``out_dir``, dataset, a checkpoint of other settings) is
    checked before TensorFlow is imported. ``restart`` discards a checkpoint instead of resuming it;
    ``force`` trains into a folder holding an exported model or foreign files (see ``train.outdir``).
    ``pretrained``: a ``python -m train pretrain`` folder; the classifier starts from its embedding and BiLSTM
    and uses its vocabulary. ``unlabeled``: a folder or archive with ``train/unsup/*.txt``; every copy of a
    test review is dropped, an n-gram teacher fitted on the fit split labels the rest, and the BiLSTM trains
    on the fit rows (their labels) plus those reviews (the teacher's probabilities).
    """
    started = time.time()
    out = Path(out_dir)
    spec = data_path if isinstance(data_path, SourceSpec) else SourceSpec(Path(data_path))
    if class_weight not in (None, "balanced"):
        raise SettingsError(f"--class-weight must be balanced, not {class_weight!r}")
    encoder = load_pretrained(pretrained) if pretrained is not None else None
    if encoder is not None:
        check_compatible(encoder, settings)
    data, resume, extra = _open_run(spec, out, settings, preset, restart, force, class_weight,
                                    None if encoder is None else encoder.encoder_sha256, unlabeled)
    checkpoints = out / CHECKPOINT_DIR
    if extra is not None and settings.max_samples and settings.max_samples < len(extra.texts):
        keep = np.sort(np.random.default_rng(settings.seed).choice(len(extra.texts), settings.max_samples, False))
        extra = replace(extra, texts=[extra.texts[i] for i in keep], names=[extra.names[i] for i in keep])

    settings = resolve_validation(settings, data)
    fit_split, val_split, test_split = _splits(data, settings)
    log.info("labels %s; rows: %d fit, %d validation, %d test", ", ".join(data.labels), len(fit_split),
             len(val_split), len(test_split))
    weights, row_weights = _weights(data, fit_split, class_weight)
    if data.soft is not None and settings.max_samples and settings.max_samples < len(data.soft[0]):
        keep = np.sort(np.random.default_rng(settings.seed).choice(len(data.soft[0]), settings.max_samples, False))
        data = replace(data, soft=([data.soft[0][i] for i in keep], data.soft[1][keep]))
    soft_texts = data.soft[0] if data.soft is not None else []
    vocab_texts = fit_split.texts + (extra.texts if extra else []) + soft_texts
    vocabulary = encoder.vocabulary if encoder else build_vocabulary(vocab_texts, settings.vocab_size)
    tokenizer = Tokenizer(vocabulary, settings.max_len, settings.padding, settings.truncating)
    x_val, x_fit = tokenizer.encode(val_split.texts), tokenizer.encode(fit_split.texts)
    fit_rows: tuple[np.ndarray, np.ndarray] = (x_fit, fit_split.labels)
    distillation = None
    if extra is not None:
        fit_rows, distillation = _with_soft_targets(settings, fit_rows, (x_val, val_split.labels),
                                                    tokenizer.encode(extra.texts), extra)
        row_weights = None if row_weights is None else np.concatenate(
            [row_weights, np.ones(len(extra.texts), dtype=np.float32)])
    if data.soft is not None:
        fit_rows = (np.concatenate([fit_rows[0], tokenizer.encode(soft_texts)]),
                    np.concatenate([fit_rows[1].astype(np.float32), data.soft[1]]))
        row_weights = None if row_weights is None else np.concatenate(
            [row_weights, np.ones(len(soft_texts), dtype=np.float32)])
    model, early_stop, clock = _fit(settings, fit_rows, (x_val, val_split.labels), checkpoints,
                                    resume, started, len(data.labels), row_weights, encoder)
    bilstm, bag = model, None
    if settings.bag_dim:
        model, bag, weight = _add_bag(settings, model, (x_fit, fit_split.labels), (x_val, val_split.labels))
    calibration = None
    if settings.calibrate:
        from train.calibration import calibrate

        calibration = calibrate(model, x_val, val_split.labels, combined=bag is not None)

    # The test split is read once, here, for the reported figure. Both figures are the kept weights'.
    x_test = tokenizer.encode(test_split.texts)
    test_loss, test_accuracy = model.evaluate(x_test, test_split.labels, batch_size=256, verbose=0)
    branches = None
    if bag is not None:
        branches = {"weight": weight, **{name: {
            "validation_accuracy": float(part.evaluate(x_val, val_split.labels, batch_size=256, verbose=0)[1]),
            "test_accuracy": float(part.evaluate(x_test, test_split.labels, batch_size=256, verbose=0)[1])}
            for name, part in (("bilstm", bilstm), ("ngram_bag", bag))}}
    val_loss, val_accuracy = model.evaluate(x_val, val_split.labels, batch_size=256, verbose=0)

    # The old report goes first: a folder never pairs a new model with the previous run's report.
    (out / REPORT_FILE).unlink(missing_ok=True)
    _save_model(model, settings, out / MODEL_FILE, len(data.labels), combined=bag is not None)
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
        pretrained=None if encoder is None else encoder.summary(),
        branches=branches,
        distillation=distillation,
        calibration=calibration,
    )
    report.save(out / REPORT_FILE)
    if history:
        _save_plot(history, out / PLOT_FILE)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return report
