"""Reproductions of the lecture's claims, each a plot and a ``results.json``.

    from zoo import experiments
    experiments.list_experiments()      # ['depth', 'weight-decay', ...]
    results = experiments.run("batch-norm", quick=True)   # -> ./runs/reproduce-batch-norm/

One module per experiment (``depth``, ``weight_decay``, ``early_stopping``,
``batch_norm``, ``dropout``, ``params``, ``mnist1d_table``), registered in
``registry``; ``callbacks`` holds the Keras callbacks they record with, usable
on any model. ``add_reproduce_command`` / ``run_reproduce`` give the ``zoo
reproduce`` command. Importing this package imports neither TensorFlow nor
the experiments.
"""

from zoo.experiments.cli import add_reproduce_command, run_reproduce
from zoo.experiments.registry import get_experiment, list_experiments, register_experiment, run

__all__ = ["add_reproduce_command", "get_experiment", "list_experiments", "register_experiment",
           "run", "run_reproduce"]
