"""Packaging beyond what pyproject.toml can say: the wheel carries the configs.

The repository's top-level ``conf/`` is the one source of the Hydra configs. At build time it is
mapped into the package as ``qzhou_eval/conf`` (``package_dir``), so a wheel (``pip install .``)
has the configs inside the package, where ``qzhou_eval.config.app.config_dir`` finds them; an
editable install and a plain checkout read ``conf/`` itself. MANIFEST.in puts ``conf/`` into the
sdist.
"""

from setuptools import find_namespace_packages, setup

CONF_PACKAGES = [
    "qzhou_eval.conf",
    *(f"qzhou_eval.conf.{group}" for group in find_namespace_packages(where="conf")),
]

setup(
    packages=[*find_namespace_packages(include=["qzhou_eval", "qzhou_eval.*"]), *CONF_PACKAGES],
    package_dir={"qzhou_eval.conf": "conf"},
    package_data={
        "qzhou_eval": ["data/**/*", "py.typed"],
        **{package: ["*.yaml"] for package in CONF_PACKAGES},
    },
)
