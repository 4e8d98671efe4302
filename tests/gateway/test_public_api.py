from __future__ import annotations

import types

import gateway


def test_all_names_exist_and_nothing_public_is_missing():
    for name in gateway.__all__:
        assert hasattr(gateway, name), name
    public = {n for n, v in vars(gateway).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public - {"annotations"} == set(gateway.__all__)
    assert len(set(gateway.__all__)) == len(gateway.__all__)  # ruff (RUF022) keeps it sorted
