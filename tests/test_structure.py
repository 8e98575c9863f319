"""The package's shape, as design.md draws it: vendor knowledge only in byhand.vendors, an
operating side that runs without Django, and units a reader takes in at a glance."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections

from byhand.vendors import VENDORS, get_vendor
from support import ROOT

SOURCE = ROOT / "src" / "byhand"
#: What runs next to the production database, with a driver and no Django.
OPERATING = ["byhand.cli", "byhand.console", "byhand.runbook", "byhand.events", "byhand.exceptions", "byhand.hazards"]


def modules(*, outside: str | None = None) -> list[Path]:
    return [path for path in sorted(SOURCE.rglob("*.py")) if outside is None or outside not in path.parts]


def test_no_vendor_is_named_outside_the_vendors_package() -> None:
    """Only byhand.vendors compares anything with a vendor's name; the rest asks the vendor object."""
    named = []
    for path in modules(outside="vendors"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = [c for c in (node.left, *node.comparators) if isinstance(c, ast.Constant)]
                constants += [
                    e for c in node.comparators if isinstance(c, (ast.Tuple, ast.List, ast.Set)) for e in c.elts
                ]
                if any(isinstance(c, ast.Constant) and c.value in VENDORS for c in constants):
                    named.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert named == []


def test_the_operating_side_imports_without_django() -> None:
    """Every module of byhand.operating and byhand.vendors, and the console script's, with
    Django made unimportable."""
    names = OPERATING + [
        f"byhand.{path.parent.name}.{path.stem}"
        for folder in ("operating", "vendors")
        for path in sorted((SOURCE / folder).glob("*.py"))
        if path.stem != "__init__"
    ]
    code = "import importlib, sys\nsys.modules['django'] = None\n" + "".join(
        f"importlib.import_module({name!r})\n" for name in names
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


#: What "at a glance" means here (style.md: modules ~300 lines, functions on a screen).
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 65


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(SOURCE)))
def test_no_class_or_function_outgrows_a_reading(path: Path) -> None:
    """No class over MAX_CLASS_LINES lines, no function over MAX_FUNCTION_LINES."""
    too_long = []
    for node in ast.walk(ast.parse(path.read_text())):
        limit = {ast.ClassDef: MAX_CLASS_LINES, ast.FunctionDef: MAX_FUNCTION_LINES}.get(type(node))
        if limit is not None:
            assert isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                too_long.append(f"{node.name}: {lines} lines")
    assert too_long == []


def test_the_vendor_object_says_of_ddl_what_django_says() -> None:
    """Vendor.transactional_ddl (what the runbook's parser checks BEGIN/COMMIT against) is Django's
    own features.can_rollback_ddl (what the compiler wraps atomic migrations by), for the vendor under test."""
    connection = connections["default"]
    assert get_vendor(connection.vendor).transactional_ddl == connection.features.can_rollback_ddl
