"""Precision as a setting: the ``auto`` rules on faked devices (no GPU runs
here), explicit requests on devices without native support, and what a run
records and refuses."""

import json
import warnings

import keras
import pytest

from zoo.training import RunSettingsChangedError, train
from zoo.training import precision as precision_module
from zoo.training.precision import (
    Device,
    EmulatedPrecisionWarning,
    announce,
    choose_precision,
    cpu_flags,
    precision_scope,
)

PLAIN_CPU = Device(cpu_flags=frozenset({"avx2", "fma"}))


@pytest.mark.parametrize("device, policy", [
    (Device(cpu_flags=frozenset({"avx512f", "amx_bf16", "amx_tile"})), "mixed_bfloat16"),
    (Device(cpu_flags=frozenset({"avx512f", "avx512_bf16"})), "mixed_bfloat16"),
    (Device(cpu_flags=frozenset({"avx512f", "avx512_fp16"})), "float32"),  # no bf16: fp16 not auto on CPUs
    (PLAIN_CPU, "float32"),
    (Device(cpu_flags=frozenset()), "float32"),                       # no /proc/cpuinfo
    (Device(((8, 6),)), "mixed_bfloat16"),                            # Ampere
    (Device(((9, 0), (8, 0))), "mixed_bfloat16"),
    (Device(((7, 5),)), "mixed_float16"),                             # Turing: tensor cores
    (Device(((7, 0),), frozenset({"amx_bf16"})), "mixed_float16"),   # the GPU decides, not the CPU
    (Device(((8, 6), (7, 0))), "mixed_float16"),                      # the slowest GPU decides
    (Device(((6, 1),)), "float32"),                                   # Pascal: no tensor cores
], ids=["amx", "avx512-bf16", "avx512-fp16", "avx2", "unknown-cpu", "gpu-8.6", "gpus-9.0-8.0",
        "gpu-7.5", "gpu-7.0-with-amx-cpu", "gpus-8.6-7.0", "gpu-6.1"])
def test_auto_picks_the_fastest_native_precision(device, policy):
    chosen = choose_precision("auto", device)
    assert chosen.policy == policy and chosen.native
    assert chosen.reason.startswith("auto: ")


@pytest.mark.parametrize("requested, device, native", [
    ("mixed_bfloat16", PLAIN_CPU, False),
    ("mixed_float16", PLAIN_CPU, False),
    ("mixed_float16", Device(cpu_flags=frozenset({"avx512_fp16"})), True),
    ("mixed_bfloat16", Device(((7, 5),)), False),
    ("mixed_float16", Device(((7, 5),)), True),
    ("float32", Device(((8, 6),)), True),
])
def test_an_explicit_precision_is_kept_and_says_whether_it_is_emulated(requested, device, native):
    chosen = choose_precision(requested, device)
    assert chosen.policy == requested and chosen.native is native
    assert ("emulated and slow" in chosen.reason) is not native


def test_an_emulated_precision_warns_once_and_the_choice_is_printed_once(monkeypatch, capsys):
    monkeypatch.setattr(precision_module, "_announced", set())
    chosen = choose_precision("mixed_bfloat16", PLAIN_CPU)
    with pytest.warns(EmulatedPrecisionWarning, match="emulated and slow"):
        announce(chosen)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        announce(chosen)
    assert capsys.readouterr().out.count("precision: mixed_bfloat16") == 1


def test_unknown_precision_names_the_allowed_values():
    with pytest.raises(ValueError, match="Expected one of 'auto', 'float32', 'mixed_bfloat16', "
                                         "'mixed_float16'. Received: precision='half'"):
        choose_precision("half", PLAIN_CPU)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16 avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx2 amx_bf16 avx512_bf16\n")
    assert {"amx_bf16", "avx512_bf16", "avx2"} <= cpu_flags(cpuinfo)
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_precision_scope_restores_the_global_policy():
    keras.mixed_precision.set_global_policy("mixed_float16")
    with precision_scope("mixed_bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_float16"


TINY = dict(dataset="mnist1d", batch_size=400, seed=0, verbose=0, filters=(4,), dense_units=(8,))


@pytest.mark.filterwarnings("ignore::zoo.training.precision.EmulatedPrecisionWarning")
def test_a_run_records_its_precision_and_refuses_another_on_resume(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    result = train("cnn1d", epochs=1, precision="mixed_bfloat16", run_dir=run_dir,
                   data_dir=data_dir, **TINY)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["precision"] == "mixed_bfloat16" and metrics["precision_reason"]
    assert result.model.get_layer("conv_1").compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the build

    # An unfinished run (as an interrupted one leaves it) resumes only at its precision.
    (run_dir / "metrics.json").unlink()
    with pytest.raises(RunSettingsChangedError,
                       match=r"precision 'mixed_bfloat16' -> 'float32'.*overwrite=True"):
        train("cnn1d", epochs=1, precision="float32", run_dir=run_dir, data_dir=data_dir, **TINY)
    result = train("cnn1d", epochs=1, precision="float32", run_dir=run_dir, data_dir=data_dir,
                   overwrite=True, **TINY)
    assert result.metrics["precision"] == "float32"


def test_a_built_model_keeps_its_own_policy(tmp_path, data_dir):
    from zoo import create_model

    model = create_model("cnn1d", input_shape=(40, 1), filters=(4,), dense_units=(8,))
    with pytest.raises(ValueError, match="precision='mixed_float16' applies to a model given by "
                                         "name; this model was built with the 'float32' policy"):
        train(model, dataset="mnist1d", epochs=1, precision="mixed_float16",
              run_dir=tmp_path / "run", data_dir=data_dir, verbose=0)


def test_the_command_line_runs_an_emulated_precision_as_the_api_does_and_warns_in_one_line(
        monkeypatch, capsys, tmp_path, data_dir):
    from zoo.cli import main
    from zoo.training import precision

    monkeypatch.setattr(precision, "detect_device", lambda: precision.Device())  # a plain CPU
    monkeypatch.setattr(precision, "_announced", set())
    assert main(["train", "mlp", "--dataset", "mnist1d", "--epochs", "1", "--batch-size", "400",
                 "--precision", "mixed_float16", "--run-dir", str(tmp_path / "run"),
                 "--data-dir", data_dir, "--verbose", "0"]) == 0
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["zoo: warning: precision mixed_float16 is emulated and slow: the CPU does "
                     "not compute float16 natively."]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["precision"] == "mixed_float16"


def test_the_device_is_probed_once_for_the_precision_and_the_strategy(monkeypatch):
    from zoo.training import engine, precision

    probes = []
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: probes.append(1) or ())
    precision.detect_device.cache_clear()
    try:
        assert choose_precision("auto") == choose_precision("auto")  # the command line, then train
        engine.make_strategy("auto")
        choose_precision("float32")
        assert len(probes) == 1
    finally:
        precision.detect_device.cache_clear()  # the next caller probes the real device
