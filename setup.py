"""nac: Neural Architecture Construction with EnvelopeNets (TensorFlow 2 / Keras 3)."""

from setuptools import find_packages, setup

setup(
    name="nac",
    version="0.1.0",
    description="Neural Architecture Construction using EnvelopeNets, in TensorFlow 2 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["nac", "nac.*"]),
    install_requires=[
        "tensorflow>=2.16",  # Keras 3; the full wheel runs on CPU and on GPU
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # needed by tensorflow-datasets' download_and_prepare
        "numpy",
        "absl-py",
        "matplotlib",
        "tensorboard",  # TensorFlow 2.21 no longer installs it: the viewer and its HParams API
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "ruff", "import-linter"]},
    entry_points={
        "console_scripts": [
            "nac-construct=nac.construct:run",
            "nac-summary=nac.summary:run",
            "nac-restructure=nac.restructure:run",
            "nac-report=nac.report:run",
            "nac-ablate=nac.ablate:run",
        ]
    },
    license="Apache-2.0",
)
