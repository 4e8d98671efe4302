"""The one part of the build pyproject.toml cannot state: the optional C extension.

``gateway.helpers._spanscan`` runs the per-span loops of a few hot paths in C (see its source). It is optional:
where it does not compile (no C compiler, no Python headers) the install still succeeds, with a warning, and
the same code runs in Python, slower.
"""

import os
import shutil
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Puts a built extension in place by renaming a finished copy over it, never by rewriting the file: an
    editable install (``pip install -e .``, which a test of plugins does) copies the extension into the source
    tree, and a gateway running from that tree has the old file mapped; rewriting it in place would crash it."""

    def copy_file(self, infile, outfile, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.dry_run:
            return super().copy_file(infile, outfile, *args, **kwargs)
        directory = os.path.dirname(os.path.abspath(outfile))
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".building-")
        os.close(handle)
        try:
            shutil.copy2(infile, temporary)
            os.replace(temporary, outfile)
        except BaseException:
            os.unlink(temporary)
            raise
        return outfile, True


setup(ext_modules=[Extension("gateway.helpers._spanscan", ["gateway/helpers/_spanscan.c"], optional=True,
                             extra_compile_args=["-O2"])],
      cmdclass={"build_ext": BuildExt})
