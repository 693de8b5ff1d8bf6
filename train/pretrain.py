"""``python -m train pretrain``: the classifier's embedding and BiLSTM pretrained as language models.

Text: the labelled training reviews plus the unlabelled ones, minus every text that equals a test review
(:mod:`train.unlabeled`). No test text is read into the corpus; the test split is read only to find its copies.

Writes to ``--out``: ``encoder.npz`` (the ``embedding`` and ``bidirectional`` weights), ``vocab.txt``
(built from the pretraining text), ``pretrain_curves.png`` and, last, ``pretrain_report.json``, which
lists the sha256 of both files: a fine-tuning run reads the report and checks them. Resumable like training:
a run killed mid-way continues from its last finished epoch when the same command is run again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_infer.storage import atomic_write_text, file_sha256, temp_path_beside
from edge_infer.tokenizer import Vocabulary, build_vocabulary, tokenize
from train.artifacts import read_history, save_plot, versions
from train.checkpoint import BACKUP_DIR, ELAPSED_FILE, HISTORY_FILE, fingerprint, resume_state, start_fresh
from train.data import DataError, read_imdb_items
from train.outdir import CHECKPOINT_DIR, check_output, clear_output
from train.pretrain_settings import PretrainSettings
from train.unlabeled import drop_test_copies, load_unlabeled

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.npz"
VOCAB_FILE = "vocab.txt"
PRETRAIN_REPORT_FILE = "pretrain_report.json"
PRETRAIN_PLOT_FILE = "pretrain_curves.png"
PRETRAIN_FILES = (ENCODER_FILE, VOCAB_FILE, PRETRAIN_REPORT_FILE, PRETRAIN_PLOT_FILE)
ENCODER_LAYERS = ("embedding", "bidirectional")
REPORT_FORMAT = "edge-infer-pretrain/1"


@dataclass(frozen=True)
class Corpus:
    """The pretraining text, already free of test copies, and where it came from."""

    texts: list[str]
    info: dict[str, Any]


def read_corpus(labeled: str | Path | None, unlabeled: str | Path | None, settings: PretrainSettings) -> Corpus:
    """Labelled training reviews + unlabelled reviews, every text equal to a test review dropped."""
    items, labeled_sha, labeled_path = read_imdb_items(labeled)
    train_texts = [item[3] for item in items if item[0] == "train"]
    test_texts = [item[3] for item in items if item[0] == "test"]
    if not train_texts or not test_texts:
        raise DataError(f"{labeled_path}: no train or test reviews; is this the labelled aclImdb archive?")
    keep, train_dropped = drop_test_copies(train_texts, test_texts)
    extra = load_unlabeled(unlabeled, test_texts)
    del test_texts, items
    texts = [train_texts[i] for i in keep] + extra.texts
    chosen = np.arange(len(texts))
    if settings.max_reviews and settings.max_reviews < len(texts):
        chosen = np.sort(np.random.default_rng(settings.seed).choice(len(texts), settings.max_reviews, replace=False))
        texts = [texts[i] for i in chosen]
    info = {"labeled": {"path": labeled_path, "sha256": labeled_sha, "train_reviews": len(keep),
                        "dropped_test_copies": train_dropped},
            "unlabeled": {"path": extra.path, "sha256": extra.sha256, "reviews": len(extra.texts),
                          "dropped_test_copies": extra.dropped_test_copies},
            "reviews": len(texts), "reviews_unlabeled": int((chosen >= len(keep)).sum())}
    return Corpus(texts, info)


def chunk(texts: list[str], vocabulary: Vocabulary, length: int) -> np.ndarray:
    """Each text's ids cut into pieces of ``length`` (post-padded); pieces of one token are left out."""
    pieces = []
    for text in texts:
        ids = vocabulary.ids(tokenize(text))
        pieces += [ids[i:i + length] for i in range(0, len(ids), length) if len(ids) - i >= 2]
    out = np.zeros((len(pieces), length), dtype=np.int32)
    for row, piece in enumerate(pieces):
        out[row, :len(piece)] = piece
    return out


def _split(texts: list[str], settings: PretrainSettings) -> tuple[list[str], list[str]]:
    count = max(1, round(len(texts) * settings.validation_fraction))
    held = set(np.random.default_rng([settings.seed, 2]).choice(len(texts), count, replace=False).tolist())
    return ([t for i, t in enumerate(texts) if i not in held], [t for i, t in enumerate(texts) if i in held])


def save_encoder(model, path: Path) -> str:
    """Write the encoder layers' weights (atomically); returns the file's sha256."""
    arrays = {f"{name}/{i}": w for name in ENCODER_LAYERS for i, w in enumerate(model.get_layer(name).get_weights())}
    tmp = temp_path_beside(path)
    try:
        with tmp.open("wb") as handle:
            np.savez(handle, **arrays)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return file_sha256(path)


def _fit(settings: PretrainSettings, fit: np.ndarray, validation: np.ndarray, checkpoints: Path, resume,
         started: float):
    import keras

    from train.callbacks import Checkpoint, EarlyStop, ShuffleEachEpoch, TrainingClock, restore
    from train.lm import ChunkBatches, build_language_model

    keras.utils.set_random_seed(settings.seed)
    model = build_language_model(settings)
    if resume is not None:
        restore(model, resume)
    early_stop = EarlyStop(settings.patience, resume)
    batches = ChunkBatches(fit, settings, settings.seed)
    clock = TrainingClock(checkpoints / ELAPSED_FILE, started)
    callbacks = [keras.callbacks.CSVLogger(str(checkpoints / HISTORY_FILE), append=True), clock,
                 ShuffleEachEpoch(batches), early_stop, Checkpoint(checkpoints / BACKUP_DIR, early_stop)]
    initial_epoch = 0 if resume is None else settings.epochs if early_stop.stopped else resume.epoch
    model.fit(batches, validation_data=ChunkBatches(validation, settings, settings.seed + 1),
              epochs=settings.epochs, initial_epoch=initial_epoch, shuffle=False, callbacks=callbacks,
              verbose=1 if sys.stderr.isatty() else 2)
    return model, early_stop, clock


def pretrain(labeled: str | Path | None, unlabeled: str | Path | None, out_dir: str | Path,
             settings: PretrainSettings, *, restart: bool = False, force: bool = False) -> dict[str, Any]:
    """Run the stage; returns the report (also written to ``out_dir``). Refusals come before TensorFlow."""
    started = time.time()
    settings.check()
    out = Path(out_dir)
    plan = check_output(out, force=force, own=PRETRAIN_FILES)
    corpus = read_corpus(labeled, unlabeled, settings)
    checkpoints = out / CHECKPOINT_DIR
    wanted = fingerprint(settings, "pretrain", corpus.info["labeled"]["sha256"],  # type: ignore[arg-type]
                         {"unlabeled_sha256": corpus.info["unlabeled"]["sha256"]})
    resume = resume_state(checkpoints, wanted, restart=restart)
    for line in clear_output(plan):
        log.info(line)
    if resume is None:
        start_fresh(checkpoints, wanted)
    else:
        log.info("resuming the interrupted pretraining from %s after epoch %d", checkpoints, resume.epoch)

    fit_texts, val_texts = _split(corpus.texts, settings)
    vocabulary = build_vocabulary(fit_texts, settings.vocab_size)
    fit, validation = chunk(fit_texts, vocabulary, settings.chunk_len), chunk(val_texts, vocabulary,
                                                                              settings.chunk_len)
    log.info("pretraining on %d reviews (%d chunks of up to %d tokens), %d held out (%d chunks)", len(fit_texts),
             len(fit), settings.chunk_len, len(val_texts), len(validation))
    model, early_stop, clock = _fit(settings, fit, validation, checkpoints, resume, started)

    (out / PRETRAIN_REPORT_FILE).unlink(missing_ok=True)  # the report is the switch: it goes first, comes last
    encoder_sha = save_encoder(model, out / ENCODER_FILE)
    vocab_sha = vocabulary.save(out / VOCAB_FILE)
    history = read_history(checkpoints / HISTORY_FILE)
    report = {
        "format": REPORT_FORMAT,
        "settings": settings.to_dict(),
        "data": {**corpus.info, "fit_reviews": len(fit_texts), "validation_reviews": len(val_texts),
                 "fit_chunks": len(fit), "validation_chunks": len(validation),
                 "fit_tokens": int((fit != 0).sum())},
        "files": {"encoder": {"path": ENCODER_FILE, "sha256": encoder_sha},
                  "vocabulary": {"path": VOCAB_FILE, "sha256": vocab_sha, "size": len(vocabulary)}},
        "history": history,
        "best_epoch": early_stop.best_epoch,
        "validation_loss": early_stop.best,
        "wall_time_s": round(clock.earlier_s + time.time() - started, 1),
        "resumed": resume is not None,
        "versions": versions(),
    }
    if history:
        save_plot(history, out / PRETRAIN_PLOT_FILE, metrics=("loss",))
    atomic_write_text(out / PRETRAIN_REPORT_FILE, json.dumps(report, indent=2) + "\n")
    shutil.rmtree(checkpoints, ignore_errors=True)
    return report


@dataclass(frozen=True)
class PretrainedEncoder:
    """A checked pretraining artifact: its settings, vocabulary and encoder weights file."""

    folder: Path
    settings: dict[str, Any]
    vocabulary: Vocabulary
    encoder_file: Path
    encoder_sha256: str
    report_sha256: str

    def summary(self) -> dict[str, Any]:
        """What the training report records about the encoder it started from."""
        return {"path": str(self.folder), "report_sha256": self.report_sha256,
                "encoder_sha256": self.encoder_sha256, "settings": self.settings}

    def weights(self) -> dict[str, list[np.ndarray]]:
        """Layer name -> weights, for :data:`ENCODER_LAYERS`."""
        with np.load(self.encoder_file, allow_pickle=False) as arrays:
            return {name: [arrays[f"{name}/{i}"] for i in range(sum(k.startswith(name + "/") for k in arrays.files))]
                    for name in ENCODER_LAYERS}


def load_pretrained(folder: str | Path) -> PretrainedEncoder:
    """Read ``folder``'s pretraining report and check its files (:class:`DataError`, one line, if unusable)."""
    root = Path(folder)
    report_path = root / PRETRAIN_REPORT_FILE
    try:
        text = report_path.read_text(encoding="utf-8")
        report = json.loads(text)
        if report.get("format") != REPORT_FORMAT:
            raise ValueError(f"format {report.get('format')!r} is not {REPORT_FORMAT!r}")
        files, settings = report["files"], dict(report["settings"])
        names = {key: str(files[key]["path"]) for key in ("encoder", "vocabulary")}
        if any(Path(name).name != name for name in names.values()):
            raise ValueError("a file path is not a plain file name")
        entries = {key: (root / names[key], str(files[key]["sha256"])) for key in names}
    except FileNotFoundError:
        raise DataError(f"--pretrained {root}: no {PRETRAIN_REPORT_FILE}; run python -m train pretrain "
                        "--out FOLDER first") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(f"--pretrained {root}: unreadable {PRETRAIN_REPORT_FILE} ({error})") from None
    for path, sha in entries.values():
        if not path.is_file() or file_sha256(path) != sha:
            raise DataError(f"--pretrained {root}: {path.name} is missing or does not match the sha256 in "
                            f"{PRETRAIN_REPORT_FILE}; run the pretraining again")
    return PretrainedEncoder(root, settings, Vocabulary.load(entries["vocabulary"][0]), *entries["encoder"],
                             hashlib.sha256(text.encode("utf-8")).hexdigest())


def check_compatible(encoder: PretrainedEncoder, settings: Any) -> None:
    """:class:`DataError` unless the classifier ``settings`` have the encoder's shapes (and mask padding)."""
    wanted = {key: encoder.settings.get(key) for key in ("vocab_size", "embedding_dim", "units")}
    wanted.update(cell="lstm", mask_zero=True, padding="post")
    wrong = [f"--{key.replace('_', '-')} {getattr(settings, key)} (the encoder's is {value})"
             for key, value in wanted.items() if getattr(settings, key) != value]
    if wrong:
        raise DataError(f"--pretrained {encoder.folder}: the classifier settings do not fit the pretrained encoder: "
                        + "; ".join(wrong))
