"""``python -m export --keras models/default/model.keras [--out DIR]``: ONNX files, gated by parity."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from edge_infer import exit_codes

SEED = 1337

EPILOG = exit_codes.describe() + """

An export that exits 3 (or is killed) leaves the model folder on its previous manifest and files; a
parity refusal explains itself in parity_report.failed.md there.
"""


def _parser() -> argparse.ArgumentParser:
    from train.data import default_data_path

    p = argparse.ArgumentParser(
        prog="python -m export", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Convert a trained Keras model to ONNX (fp32 + int8), prove parity with Keras on real test "
                    "reviews, and switch the model folder the runtime reads (manifest.json naming "
                    "model.<sha>.onnx, model.int8.<sha>.onnx, vocab.<sha>.txt; parity_report.md) at once.")
    p.add_argument("--keras", required=True, type=Path,
                   help="the model.keras to export; vocab.txt and training_report.json must lie beside it")
    p.add_argument("--out", type=Path, help="output folder (default: the model's folder)")
    p.add_argument("--data", type=Path,
                   help="the training's --data (aclImdb folder or .tar.gz, .csv, .jsonl, FOLDER/<label>/*.txt): the "
                        "gates read its test split (aclImdb's, or the seeded 20 %% held out in training); default: the "
                        f"source the training report records, else {default_data_path()}")
    p.add_argument("--test-data", type=Path,
                   help="a labelled test source whose every row is a gate review (default: the training's)")
    p.add_argument("--text-field", help="CSV column / JSON key of the text (default: the training's)")
    p.add_argument("--label-field", help="CSV column / JSON key of the label (default: the training's)")
    p.add_argument("--reviews", type=int, default=5000,
                   help="stratified sample of test reviews for the gates; 0 = all (default: %(default)s)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 variant")
    p.add_argument("--name", help="model name in the manifest (default: the output folder's name)")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")
    return p


def _recorded(training, role: str) -> Path | None:
    """The path of the ``role`` source ("data" or "test") the training report records, if it still exists."""
    for source in training.data.sources or ():
        if source.get("role") == role and isinstance(source.get("path"), str) and Path(source["path"]).exists():
            return Path(source["path"])
    return None


def _gate_source(args: argparse.Namespace, training):
    """The test source of the gates: the command line's, else the one training used."""
    from train.data import default_data_path
    from train.sources import SourceSpec

    info = training.data
    data = args.data or _recorded(training, "data") or default_data_path()
    test_data = args.test_data
    if test_data is None and args.data is None and (info.test_split or {}).get("from") == "test-data":
        test_data = _recorded(training, "test")
    return SourceSpec(data, args.text_field or info.text_field, args.label_field or info.label_field, training.labels,
                      test_data)


def _reviews(args: argparse.Namespace, training):
    """The labelled gate reviews: a seeded stratified sample of ``--reviews`` from the test split."""
    from export.pipeline import Reviews
    from train.data import stratified_indices, subset
    from train.sources import load_test_split

    seed = training.settings.get("seed", SEED)  # the held-out test split is the training's seeded draw
    test, equal = load_test_split(_gate_source(args, training), seed if isinstance(seed, int) else SEED)
    count = args.reviews
    if count and count < len(test):
        test = subset(test, stratified_indices(test.labels, count, SEED, classes=len(training.labels),
                                               proportional=not equal))
    return Reviews(list(test.texts), test.labels)


def _quiet_libraries(quiet: bool) -> None:
    # Our progress lines only: tf2onnx and the quantizer log chatty advice on the root logger.
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    logging.getLogger("export").setLevel(logging.WARNING if quiet else logging.INFO)
    for name in ("tf2onnx", "onnxruntime"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _run(args: argparse.Namespace):
    from export.pipeline import export_model, load_source

    source = load_source(args.keras)  # refuse a bad model folder before reading 80 MB of reviews
    return export_model(source, _reviews(args, source.training), args.out, name=args.name, int8=not args.no_int8)


def _summary(result) -> None:
    parity, int8 = result.parity, result.int8
    print(f"wrote {result.out_dir}: parity max |diff| {parity.max_abs_diff:.3g} on {parity.reviews} reviews "
          f"+ {len(parity.edge_cases)} edge cases, label agreement {100 * parity.label_agreement:.2f} %")
    if int8.refused:
        print(f"int8 not written: {int8.refused}")
    else:
        print(f"int8: accuracy {100 * int8.int8_accuracy:.2f} % vs fp32 {100 * int8.fp32_accuracy:.2f} %, "
              f"label agreement {100 * int8.label_agreement:.2f} %")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.reviews < 0:
        print("error: --reviews must be >= 0", file=sys.stderr)
        return exit_codes.USAGE
    _quiet_libraries(args.quiet)
    from export.convert import StructureError
    from export.parity import ParityError
    from export.training import ExportInputError, VocabularyMismatchError
    from train.data import DataError

    try:
        result = _run(args)
    except KeyboardInterrupt:
        print("error: interrupted; the model folder holds the previous export or this one, never a mix",
              file=sys.stderr)
        return exit_codes.INTERRUPTED
    except (ExportInputError, DataError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return exit_codes.USAGE
    except (StructureError, ParityError, VocabularyMismatchError) as error:
        print(f"error: export refused: {_one_line(error)}", file=sys.stderr)
        return exit_codes.MODEL
    except Exception as error:  # noqa: BLE001 - the CLI boundary: one line, not a traceback
        print(f"error: unexpected {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        return exit_codes.INTERNAL
    _summary(result)
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
