"""A search does not keep its finished trials' graphs: the custom layers'
gradient registrations in TensorFlow's global registry (each holds a traced
graph) do not grow trial over trial (benchmarks/memory.py measures the RSS)."""

from tensorflow.python.framework import ops

import tuning.tuners
from tuning import tune
from tests.tuning.helpers import TINY_CNN


def custom_gradient_registrations():
    return sum(name.startswith("CustomGradient-") for name in ops._gradient_registry._registry)


def test_each_trial_leaves_no_custom_gradient_registrations_behind(data_dir, tmp_path, monkeypatch):
    after_each_trial = []
    on_trial_end = tuning.tuners._ZooTunerHooks.on_trial_end

    def recording_on_trial_end(self, trial):
        on_trial_end(self, trial)
        after_each_trial.append(custom_gradient_registrations())

    monkeypatch.setattr(tuning.tuners._ZooTunerHooks, "on_trial_end", recording_on_trial_end)
    tune("cnn1d", "mnist1d", tuner="random", max_trials=3, max_epochs=1, batch_size=400, seed=3,
         directory=tmp_path, data_dir=data_dir, retrain=False, verbose=0, **TINY_CNN)
    # (Building the search space before the first trial registers some too: they stay.)
    assert len(after_each_trial) == 3 and after_each_trial == [after_each_trial[0]] * 3
