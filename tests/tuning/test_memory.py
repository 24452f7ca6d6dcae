"""A search does not keep its finished trials' graphs: the custom layers'
gradient registrations in TensorFlow's global registry (each holds a traced
graph) do not grow trial over trial (benchmarks/memory.py measures the RSS)."""

from tuning import tune
from tuning._compat import custom_gradient_count
from tests.tuning.helpers import TINY_CNN


def _search(data_dir, directory, **options):
    after_each_trial = []
    tune("cnn1d", "mnist1d", tuner="random", max_trials=3, epochs=1, batch_size=400, seed=3,
         run_dir=directory, data_dir=data_dir, retrain=False, verbose=0,
         trial_observers=[lambda trial: after_each_trial.append(custom_gradient_count())],
         **options, **TINY_CNN)
    return after_each_trial


def test_each_trial_leaves_no_custom_gradient_registrations_behind(data_dir, tmp_path):
    after_each_trial = _search(data_dir, tmp_path)
    # (Building the search space before the first trial registers some too: they stay.)
    assert len(after_each_trial) == 3 and after_each_trial == [after_each_trial[0]] * 3


def test_without_the_release_each_trial_leaves_its_registrations(data_dir, tmp_path):
    after_each_trial = _search(data_dir, tmp_path, release_custom_gradients=False)
    assert after_each_trial[0] < after_each_trial[1] < after_each_trial[2]
