"""What every ``zoo`` command shares: the parser that prints one line and
exits with status 2, argument types with Keras-style bounds, the runner that
turns errors into one line and Ctrl-C into status 130, and the discovery of
subcommands that other packages contribute.

A package adds a subcommand through the entry-point group ``zoo.commands``:
the entry point is a function ``add(subparsers)`` that adds its parser and
sets ``handler`` (a function of the parsed arguments) as its default, e.g.

    [project.entry-points."zoo.commands"]
    tune = "tuning.cli:add_tune_command"

so ``zoo`` presents commands built on it without importing them by name.
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import warnings
from importlib.metadata import entry_points
from typing import Callable

from zoo.interrupts import interrupt_requested, watch_for_interrupts
from zoo.vocabulary import TRAINING, non_negative_float, rate

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
COMMAND_GROUP = "zoo.commands"

Handler = Callable[[argparse.Namespace], object]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line with the one prefix
    of every ``zoo`` error (``zoo: error: ...``, a subcommand's too) and exit
    status 2, without the usage dump. It takes no abbreviated flags
    (``--epoch`` is not ``--epochs``), so that a flag added later cannot
    change what an old command means."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        # API name -> flag of this parser's options (early_stopping_patience ->
        # --early-stopping-patience), filled as they are added, for cli_wording
        self.flags: dict[str, str] = {}
        self.set_defaults(flags=self.flags)

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        return self._record_flag(super().add_argument(*args, **kwargs))

    def add_argument_group(self, *args, **kwargs):
        """A group whose options are recorded in :attr:`flags` too."""
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument
        group.add_argument = lambda *names, **options: self._record_flag(add(*names, **options))
        return group

    def _record_flag(self, action: argparse.Action) -> argparse.Action:
        if action.option_strings and action.dest not in ("help", "version"):
            self.flags[action.dest] = max(action.option_strings, key=len)
        return action

    def error(self, message):
        prog = "zoo" if self.prog.startswith("zoo ") else self.prog  # "zoo train" → "zoo"
        self.exit(EXIT_ERROR, f"{prog}: error: {message}\n")


def add_training_arguments(parser, *, model_arguments: bool = True) -> None:
    """The flags of every command that trains a registry model (``zoo train``,
    ``zoo tune``): one per setting of ``zoo.vocabulary.TRAINING`` (named,
    typed, defaulted and explained as ``zoo.training.TrainConfig``'s field
    is: ``--early-stopping-patience`` is ``early_stopping_patience``), then
    the model arguments every model shares. Read them back with
    :func:`training_settings`."""
    parser.add_argument("model", help="a registered model name (see `zoo list`)")
    for name, setting in TRAINING.items():
        setting.add_to(parser, name)
    if model_arguments:
        parser.add_argument("--weight-decay", type=non_negative_float, default=None,
                            help="λ in E = E_D + λ‖w‖² (default: the model's)")
        parser.add_argument("--dropout-rate", type=rate, default=None,
                            help="dropout rate (default: the model's)")
    parser.add_argument("--no-batch-norm", action="store_true", help="build without batch norm")
    parser.add_argument("--layers", choices=("custom", "keras"), default=None,
                        help="hand-written-gradient layers (default) or keras.layers")
    add_model_argument(parser)


def training_settings(args: argparse.Namespace) -> dict:
    """The ``zoo.training.TrainConfig`` fields and model arguments that
    :func:`add_training_arguments`'s flags hold, as keywords for ``train``/``tune``."""
    model_arguments = dict(args.model_arguments)
    for name in ("weight_decay", "dropout_rate", "layers"):
        if getattr(args, name, None) is not None:
            model_arguments[name] = getattr(args, name)
    if args.no_batch_norm:
        model_arguments["batch_norm"] = False
    return {**{name: getattr(args, name) for name in TRAINING}, "model_arguments": model_arguments}


#: ``--data-dir`` of every command that reads a dataset.
DATA_DIR_HELP = ("where datasets are prepared (tensorflow-datasets' data directory; default: "
                 "$TFDS_DATA_DIR or ~/tensorflow_datasets); a directory holding the four raw "
                 "files of MNIST or Fashion-MNIST serves as their source too")


def add_run_arguments(parser, run_dir_help: str) -> None:
    """The flags of how a command runs, shared by ``zoo train``, ``zoo tune``
    and ``zoo reproduce``: where it writes, whether it starts afresh, how much
    it prints, where the tensorflow-datasets data live."""
    parser.add_argument("--run-dir", default=None, metavar="DIR", help=run_dir_help)
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="0: silent, 1: progress bars, 2: one line per epoch (default: 1 on "
                             "a terminal, 2 in a log file)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)


def verbosity(args: argparse.Namespace) -> int | str:
    """``--verbose``, or its default "auto": progress bars on a terminal, one
    line per epoch in a log file (``zoo.training.engine.resolve_verbose``)."""
    return "auto" if args.verbose is None else args.verbose


def add_precision_argument(parser) -> None:
    """``--precision`` of a command that trains but takes no other training
    setting (``zoo reproduce``), as :func:`add_training_arguments` makes it."""
    TRAINING["precision"].add_to(parser, "precision")


def model_argument(text: str) -> tuple[str, object]:
    """An argparse ``type`` for ``NAME=VALUE``, the value a Python literal
    (a list becomes a tuple) or else a bare word (``layers=keras``)."""
    name, separator, value = text.partition("=")
    if not separator or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, received {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return name.strip(), parsed


def add_model_argument(parser) -> None:
    """``--model-arg NAME=VALUE`` of every command that builds a registry model."""
    parser.add_argument("--model-arg", dest="model_arguments", type=model_argument, action="append",
                        default=[],
                        metavar="NAME=VALUE",
                        help="another model argument, a Python literal, e.g. 'filters=(16, 32)' "
                             "(repeatable)")


def add_contributed_commands(subparsers) -> list[str]:
    """Adds the subcommands registered under the ``zoo.commands`` entry-point
    group to ``subparsers``; returns their names."""
    names = []
    for entry_point in sorted(entry_points(group=COMMAND_GROUP), key=lambda point: point.name):
        entry_point.load()(subparsers)
        names.append(entry_point.name)
    return names


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and looks for GPUs with file descriptor 2 pointed at
    /dev/null: its C++ runtime prints start-up notices before its log level
    applies (and CUDA's "failed call to cuInit" on a machine without a GPU),
    and a user's terminal should show only this program's own output and errors."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # CUDA starts here, silently
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported here (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # an import system that refuses it
        return False


def keras_backend() -> str:
    """The Keras backend this process will run (``KERAS_BACKEND``, else
    Keras' configuration file, else tensorflow), without importing Keras."""
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name
    return _configured_backend() or "tensorflow"


def choose_backend() -> None:
    """Where no backend is asked for (``KERAS_BACKEND`` unset) and the one
    Keras would start (its configuration's, else TensorFlow) is TensorFlow,
    which is not installed, runs on JAX if it is, and says so in one line:
    the backend is the user's choice, TensorFlow only the default."""
    if os.environ.get("KERAS_BACKEND") or keras_backend() != "tensorflow" or tensorflow_installed():
        return
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        return  # Keras names what is missing
    os.environ["KERAS_BACKEND"] = "jax"
    print("zoo: TensorFlow is not installed here; running on Keras' JAX backend "
          "(KERAS_BACKEND chooses another).", file=sys.stderr, flush=True)


def _configured_backend() -> str | None:
    """The backend of Keras' configuration file (``$KERAS_HOME/keras.json``), if any."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    try:
        with open(os.path.join(home, "keras.json")) as handle:
            return json.load(handle).get("backend") or None
    except (OSError, ValueError, AttributeError):
        return None


def run_command(handler: Handler, args: argparse.Namespace) -> int:
    """Runs a command handler the way every ``zoo`` command runs: TensorFlow
    imported quietly (when it is the backend), errors as one line with exit
    status 2, Ctrl-C as 130."""
    watch_for_interrupts()
    choose_backend()
    try:
        if keras_backend() == "tensorflow" or tensorflow_installed():
            import_tensorflow_quietly()  # Keras imports an installed TensorFlow on any backend
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            handler(args)
        if interrupt_requested.is_set():  # raised where Python ignored it, after the last batch
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("zoo: interrupted; run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, RuntimeError, KeyError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"zoo: error: {cli_wording(message, getattr(args, 'flags', {}))}", file=sys.stderr)
        return EXIT_ERROR
    return 0


_show_warning = warnings.showwarning
OWN_PACKAGES = ("custom_layers", "zoo", "tuning")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Shows a warning of this project's own (an emulated precision asked
    for) as the commands show errors: one line, ``zoo: warning: ...``; any
    other as Python does."""
    if category.__module__.split(".")[0] not in OWN_PACKAGES:
        _show_warning(message, category, filename, lineno, file, line)
        return
    print(f"zoo: warning: {str(message).strip().splitlines()[0]}", file=file or sys.stderr, flush=True)


def cli_wording(message: str, flags: dict[str, str]) -> str:
    """A library error in the command line's words: for each API name that
    is a flag of the command (``flags``: name → flag), ``name=True`` becomes
    ``--name``, ``name=value`` ``--name value`` and ```name``` ``--name``."""
    for name, flag in flags.items():
        message = re.sub(rf"(?<![\w.-]){name}=True\b", flag, message)
        message = re.sub(rf"(?<![\w.-]){name}=(['\"]?)([^\s'\";,)]+)\1",
                         lambda match: f"{flag} {match.group(2)}", message)
        message = message.replace(f"`{name}`", flag)
    return message


def version() -> str:
    """The installed deepzoo's version."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("deepzoo")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(build_parser: Callable[[], argparse.ArgumentParser], argv=None) -> int:
    """Parses ``argv`` with the parser ``build_parser`` makes and runs the
    chosen subcommand's ``handler`` (see :func:`run_command`); with no
    arguments at all, prints the usage and the commands (exit status 2)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # JAX takes GPU memory as needed, as TensorFlow's memory growth does, rather than
    # 75 % of it at start (set before JAX starts; an explicit setting wins).
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else list(argv)):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C before the command started: nothing to resume
        print("zoo: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    return run_command(args.handler, args)
