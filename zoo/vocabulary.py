"""One vocabulary from the Python API to the command line: each setting of
a training — its name (a field of ``zoo.training.TrainConfig``), default,
allowed values, how it is read from text and what it means — written once.
``TrainConfig`` takes its defaults and choices from here and ``zoo train`` /
``zoo tune`` make their flags from it (``zoo.commands.add_training_arguments``),
so that a flag cannot drift from its API name. Imports neither Keras nor the
layers: the command line is built before Keras starts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
SCHEDULES = ("cosine", "constant")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def int_at_least(minimum: int):
    """An argparse ``type`` for integers ≥ ``minimum``; its error names the bound."""
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def non_negative_float(text: str) -> float:
    """An argparse ``type`` for numbers ≥ 0 (e.g. λ)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, received {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type`` for finite numbers > 0 (e.g. a time budget)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, received {text!r}")
    return value


def rate(text: str) -> float:
    """An argparse ``type`` for a probability in [0, 1) (e.g. a dropout rate)."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), received {text!r}")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting of a training: its default (None: the model's recipe,
    else the dataset's), how the command line reads it (``type``,
    ``choices``; ``boolean``: ``--X``/``--no-X``), its metavar and its help."""

    default: Any = None
    help: str = ""
    type: Callable[[str], Any] | None = None
    choices: tuple | None = None
    metavar: str | tuple[str, ...] | None = None
    boolean: bool = False
    nargs: int | None = None

    def add_to(self, parser, name: str) -> argparse.Action:
        """Adds this setting to ``parser`` as ``--NAME-WITH-DASHES``, its dest the API name."""
        return parser.add_argument("--" + name.replace("_", "-"), dest=name, **self.flag_options())

    def flag_options(self) -> dict[str, Any]:
        """This setting's ``add_argument`` keywords."""
        options = {"default": self.default, "help": self.help}
        if self.boolean:
            return {**options, "action": argparse.BooleanOptionalAction}
        for name in ("type", "choices", "metavar", "nargs"):
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        return options


#: The settings of ``TrainConfig`` a command line sets, by field name, in the flags' order.
TRAINING = {
    "dataset": Setting(None, "default: the model's own (offline): mnist1d for the 1-D models, "
                             "mnist_5k for the others"),
    "epochs": Setting(None, "the most epochs one model trains (early stopping may end sooner); "
                            "default: the model's recipe (`zoo info MODEL`), else 15 (40 on mnist1d)",
                      positive_int),
    "batch_size": Setting(None, "per replica (the global batch is this times the replicas); "
                                "default: 64 (100 on mnist1d)", positive_int),
    "learning_rate": Setting(None, "initial step size; default: 1e-3 (3e-3 on mnist1d)",
                             positive_float),
    "optimizer": Setting("adam", "adam, sgd (momentum 0.9), rmsprop or adamw (default: adam)",
                         metavar="{" + ",".join(OPTIMIZERS) + "}"),
    "learning_rate_schedule": Setting("cosine", "the step size over a training: decayed to 0 along "
                                                "a cosine, or constant (default: cosine)",
                                      choices=SCHEDULES),
    "early_stopping_patience": Setting(None, "epochs without a lower validation loss before "
                                             "training stops (default: the model's recipe, else 5)",
                                       non_negative_int, metavar="N"),
    "seed": Setting(None, "seeds the weights, dropout and the data order (default: random)",
                    non_negative_int),
    "augment": Setting(None, "random shifts/rotations of images (default: the model's recipe, "
                             "else off)", boolean=True),
    "precision": Setting("auto", "dtype policy; auto (default): mixed_bfloat16 where the device "
                                 "computes bfloat16 natively (CPUs with AMX-BF16/AVX512-BF16, GPUs "
                                 "of compute capability 8.0+), mixed_float16 on older GPUs with "
                                 "tensor cores, else float32",
                         metavar="{" + ",".join(PRECISIONS) + "}"),
}
