"""The C extension is built and used wherever it can be: a machine with a C compiler must not quietly run the
Python twins (every test of the C functions would be skipped, and the gateway would be slower, with no error)."""

from __future__ import annotations

import os
import shutil
import sysconfig

import pytest

from gateway.helpers import native


@pytest.mark.skipif(os.environ.get("OTELGW_PURE_PYTHON", "") not in ("", "0"), reason="turned off on purpose")
@pytest.mark.skipif(shutil.which(str(sysconfig.get_config_var("CC") or "cc").split()[0]) is None,
                    reason="no C compiler here: the extension is optional")
def test_the_extension_is_built_and_loaded_where_a_compiler_is() -> None:
    assert native.spanscan is not None, ("gateway/helpers/_spanscan.c is not built, or its build is older than "
                                         "gateway/helpers/native.py expects: reinstall (pip install -e .)")
    assert native.spanscan.VERSION == native.VERSION
