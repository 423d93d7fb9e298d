"""Train a text sentiment classifier (Keras): TextVectorization -> Embedding -> BiLSTM -> softmax.

The reference data is the airline tweets CSV (columns ``text`` and ``airline_sentiment``):

    python training/sentiment_lstm_keras.py --data data/tweets

Each data channel is a CSV file or a folder of CSV files. Without a valid/test channel, a fixed
share of the training rows is held out for each. Tokenisation lives inside the saved
``model.keras`` (a ``TextVectorization`` layer adapted on the training text), so the model takes
a batch of raw strings (input ``text``, shape (None,)) and returns the softmax ``probabilities``:
the serving side never tokenises. Runs unchanged locally, on EC2 and as a SageMaker job;
checkpoints every epoch (and every --checkpoint-every-steps) and resumes.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: C++ info noise

import keras
import numpy as np
import tensorflow as tf

from training.common import cli, env, keras_loop

log = logging.getLogger("sentiment_lstm_keras")

STEM = "sentiment_lstm_keras"
DEFAULTS = {"epochs": 8, "batch_size": 64, "lr": 2e-3}
SMOKE_STEPS, SMOKE_EVAL_SAMPLES = 3, 64
HOLDOUT_FRACTION = 0.1  # each for valid and test when those channels are missing


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sentiment_lstm_keras.py", description=__doc__, formatter_class=cli.HelpFormatter
    )
    cli.add_common_arguments(parser, STEM, DEFAULTS)
    data = parser.add_argument_group("CSV columns")
    cli.add(data, "--text-column", type=cli.text, default="text", help="the text column")
    cli.add(data, "--label-column", type=cli.text, default="airline_sentiment",
            help="the label column")  # fmt: skip
    model = parser.add_argument_group("model")
    cli.add(model, "--vocab-size", type=cli.positive_int, default=10000,
            help="TextVectorization vocabulary size (incl. padding and OOV)")  # fmt: skip
    cli.add(model, "--sequence-length", type=cli.positive_int, default=48,
            help="tokens per text (longer texts are cut, shorter padded)")  # fmt: skip
    cli.add(model, "--embedding-dim", type=cli.positive_int, default=64, help="embedding size")
    cli.add(model, "--lstm-units", type=cli.positive_int, default=64,
            help="LSTM units per direction")  # fmt: skip
    cli.add(model, "--dropout", type=cli.non_negative_float, default=0.3,
            help="dropout before the head")  # fmt: skip
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 1
    return args


def read_csv(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """Texts and labels from a CSV file, or from every ``*.csv`` in a folder (sorted)."""
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise env.UsageError(f"no .csv files in {path}")
    texts: list[str] = []
    labels: list[str] = []
    for file in files:
        try:
            with open(file, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                missing = {text_column, label_column} - set(reader.fieldnames or [])
                if missing:
                    raise env.UsageError(
                        f"{file} lacks the column(s) {', '.join(sorted(missing))} (it has "
                        f"{', '.join(reader.fieldnames or [])}); set --text-column/--label-column"
                    )
                for line, row in enumerate(reader, start=2):
                    text, label = row[text_column], row[label_column]
                    if text is None or label is None or not label.strip():
                        raise env.UsageError(
                            f"{file}:{line}: empty {label_column} or {text_column}"
                        )
                    texts.append(text)
                    labels.append(label.strip())
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise env.UsageError(f"cannot read {file} as a UTF-8 CSV: {exc}") from exc
    if not texts:
        raise env.UsageError(f"{path} has no data rows")
    return texts, labels


def build_model(args: argparse.Namespace, train_texts: list[str], num_classes: int) -> keras.Model:
    vectorize = keras.layers.TextVectorization(
        max_tokens=args.vocab_size,
        output_sequence_length=args.sequence_length,
        name="vectorize",
    )
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(train_texts).batch(1024))
    inputs = keras.Input(shape=(), dtype="string", name="text")
    x = vectorize(inputs)
    x = keras.layers.Embedding(vectorize.vocabulary_size(), args.embedding_dim, mask_zero=True)(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(args.lstm_units, seed=args.seed))(x)
    x = keras.layers.Dropout(args.dropout, seed=args.seed)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="sentiment_lstm")
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def text_dataset(texts: list[str], labels: list[int], batch_size: int) -> tf.data.Dataset:
    return (
        tf.data.Dataset.from_tensor_slices((texts, np.asarray(labels, dtype=np.int64)))
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def main(args: argparse.Namespace) -> int:
    env.require_one_host_unless_distributed("sentiment_lstm_keras.py", distributed=False)
    keras_loop.use_gpus(args.gpu_count)
    keras_loop.seed_everything(args.seed)
    channels = env.resolve_channels(
        args.data, {"train": args.train, "valid": args.valid, "test": args.test}
    )
    columns = (args.text_column, args.label_column)
    train_dir = channels["train"]
    assert train_dir is not None  # resolve_channels raises for a missing required channel
    texts, raw_labels = read_csv(train_dir, *columns)
    class_names = sorted(set(raw_labels))
    if len(class_names) < 2:
        raise env.UsageError(f"the training data has one label ({class_names[0]}); need two+")
    index = {name: i for i, name in enumerate(class_names)}

    def encode(split: str, rows: tuple[list[str], list[str]]) -> tuple[list[str], list[int]]:
        unknown = sorted(set(rows[1]) - set(index))
        if unknown:
            raise env.UsageError(f"the {split} data has labels training lacks: {unknown}")
        return rows[0], [index[label] for label in rows[1]]

    train = encode("train", (texts, raw_labels))
    order = np.random.default_rng(args.seed).permutation(len(train[0]))
    cut = max(1, int(len(order) * HOLDOUT_FRACTION))
    held_out: list[np.ndarray] = []
    splits: dict[str, tuple[list[str], list[int]]] = {}
    for split in ("valid", "test"):
        split_dir = channels[split]
        if split_dir is not None:
            splits[split] = encode(split, read_csv(split_dir, *columns))
        else:
            rows = order[len(held_out) * cut : (len(held_out) + 1) * cut]
            held_out.append(rows)
            splits[split] = ([train[0][i] for i in rows], [train[1][i] for i in rows])
            log.warning("no %s data: holding out %d training rows for it", split, len(rows))
    if held_out:
        keep = sorted(set(range(len(order))) - set(np.concatenate(held_out).tolist()))
        train = ([train[0][i] for i in keep], [train[1][i] for i in keep])
    if args.smoke:
        splits = {
            k: (v[0][:SMOKE_EVAL_SAMPLES], v[1][:SMOKE_EVAL_SAMPLES]) for k, v in splits.items()
        }
    log.info(
        "%d classes %s, %d train / %d valid / %d test rows",
        len(class_names), class_names, len(train[0]), len(splits["valid"][0]),
        len(splits["test"][0]),
    )  # fmt: skip
    batch = args.batch_size
    max_steps = SMOKE_STEPS if args.smoke else None

    def train_batches(epoch: int, skip: int) -> tuple[tf.data.Dataset, list[int]]:
        # The epoch's order is a pure function of (seed, epoch): resuming sees the same batches.
        perm = np.random.default_rng([args.seed, epoch]).permutation(len(train[0]))
        sizes = [min(batch, len(perm) - s) for s in range(0, len(perm), batch)][:max_steps]
        perm = perm[skip * batch : sum(sizes)]
        dataset = text_dataset([train[0][i] for i in perm], [train[1][i] for i in perm], batch)
        return dataset, sizes[skip:]

    valid_ds = text_dataset(*splits["valid"], batch * 2)
    probe_x, probe_y = next(iter(valid_ds.take(1)))
    run = keras_loop.KerasRun(
        args=args,
        build_model=lambda: build_model(args, train[0], len(class_names)),
        train_batches=train_batches,
        valid=valid_ds,
        test=text_dataset(*splits["test"], batch * 2),
        probe=(probe_x[:batch], probe_y[:batch]),
        fingerprint={
            "class_names": class_names,
            "n_train": len(train[0]),
            "vocab_size": args.vocab_size,
            "sequence_length": args.sequence_length,
            "embedding_dim": args.embedding_dim,
            "lstm_units": args.lstm_units,
            "dropout": args.dropout,
            "epochs": args.epochs,
            "batch_size": batch,
            "lr": args.lr,
            "seed": args.seed,
            "smoke": args.smoke,
        },
        model_config={
            "framework": "tensorflow",
            "task": "text-classification",
            "class_names": class_names,
            "sequence_length": args.sequence_length,
            "vocab_size": args.vocab_size,
        },
        title=f"BiLSTM sentiment, {len(class_names)} classes",
    )
    metrics = keras_loop.train(run)
    log.info("done: %s", metrics)
    return 0


if __name__ == "__main__":
    cli.setup_logging()
    sys.exit(cli.run(main, parse_args()))
