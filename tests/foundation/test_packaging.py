"""Every package of the checkout is in the distribution: pyproject.toml lists packages by hand (the folders map onto
`c360.*`), so a new subpackage left off the list would run here and be missing from the wheel."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def test_every_package_folder_is_listed_in_pyproject():
    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    folders = {name: REPO / path for name, path in setup["package-dir"].items()}
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join((name, *rel)))
    assert found - listed == set(), f"packages missing from [tool.setuptools] packages: {sorted(found - listed)}"
