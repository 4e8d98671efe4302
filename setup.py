"""The one part of the build pyproject.toml cannot state: the optional C extension.

``gateway.helpers._spanscan`` runs the per-span loops of a few hot paths in C (see its source). It is optional:
where it does not compile (no C compiler, no Python headers) the install still succeeds, with a warning, and
the same code runs in Python, slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("gateway.helpers._spanscan", ["gateway/helpers/_spanscan.c"], optional=True,
                             extra_compile_args=["-O2"])])
