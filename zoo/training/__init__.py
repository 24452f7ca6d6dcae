"""How the zoo trains a model: one engine for every training.

    engine.py       compile (E = E_D + λE_W, optimizer, schedule), the run's
                    callbacks, fit — Keras' fit or the multi-worker loop
    run_state.py    weights, optimizer, early-stopping state and history,
                    committed atomically every epoch; resumption
    custom_loop.py  the loop for MultiWorkerMirroredStrategy (keras-team/keras#20585)
    precision.py    which dtype policy (float32, mixed_bfloat16, mixed_float16)
                    a device trains fastest in, and why
    config.py       ``TrainConfig``: what defines a training, validated once
    run.py          ``train``: data → model → fit → evaluate → save a run directory

``zoo train``, Keras Tuner's trials, a search's final retraining and the
``zoo reproduce`` experiments all train through ``engine``.
"""

from zoo.training.engine import (
    NonFiniteLossError,
    TerminateOnNonFiniteLoss,
    WeightPenaltyLogger,
    compile_model,
    enable_gpu_memory_growth,
    fit,
    make_deterministic,
    make_optimizer,
    make_strategy,
    training_callbacks,
    training_defaults,
)
from zoo.training.precision import PRECISIONS, EmulatedPrecisionWarning, choose_precision
from zoo.runs import RunFinishedError, RunSettingsChangedError
from zoo.training.config import TrainConfig
from zoo.training.run import TrainResult, evaluate_run, train
from zoo.training.run_state import RunState

__all__ = [
    "EmulatedPrecisionWarning",
    "NonFiniteLossError",
    "PRECISIONS",
    "RunFinishedError",
    "RunSettingsChangedError",
    "RunState",
    "TerminateOnNonFiniteLoss",
    "TrainConfig",
    "TrainResult",
    "WeightPenaltyLogger",
    "choose_precision",
    "compile_model",
    "enable_gpu_memory_growth",
    "evaluate_run",
    "fit",
    "make_deterministic",
    "make_optimizer",
    "make_strategy",
    "train",
    "training_callbacks",
    "training_defaults",
]
