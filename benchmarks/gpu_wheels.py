"""Gathers the wheels an accelerator machine without network lacks to run
:mod:`benchmarks.gpu`, and prints the one command to run there.

    python -m benchmarks.gpu_wheels [--dest wheels]

The machine is assumed to have CPython 3.12 on manylinux x86-64 with JAX
(CUDA), numpy, scipy, pandas, scikit-learn, matplotlib, h5py, rich, absl,
ml-dtypes, protobuf, grpcio and tensorboard — and no TensorFlow, Keras or
Keras Tuner. This downloads, without their dependencies (which it has), the
versions installed here of Keras, Keras Tuner, mlxtend, mnist1d and the
small pure-Python or compiled packages they need beyond that list.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from zoo.commands import Parser

#: What the machine lacks, by distribution name; pinned to the versions here.
PACKAGES = ("keras", "keras-tuner", "kt-legacy", "namex", "optree", "mlxtend", "mnist1d",
            "requests", "urllib3", "idna", "charset-normalizer", "certifi", "packaging",
            "joblib", "threadpoolctl", "pillow")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")


def pinned(name: str) -> str:
    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return name


def main(argv=None) -> int:
    parser = Parser(prog="python -m benchmarks.gpu_wheels",
                    description="Download the wheels benchmarks.gpu needs on a machine "
                                "without network, and print the command to run there.")
    parser.add_argument("--dest", default="wheels", help="folder for the wheels (default: wheels)")
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
               "--dest", str(dest)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    subprocess.run([*command, *map(pinned, PACKAGES)], check=True)
    size = sum(path.stat().st_size for path in dest.glob("*.whl"))
    print(f"{len(list(dest.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB in {dest}")
    print("On the accelerator machine, in the project's root:")
    print(f"  python -m pip install --no-index --no-deps --target .gpu-site {dest}/*.whl && "
          "PYTHONPATH=.gpu-site:. KERAS_BACKEND=jax python -m benchmarks.gpu "
          "--out benchmarks/results/gpu.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
