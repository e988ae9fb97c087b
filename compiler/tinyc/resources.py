"""Where tinyc's non-Python files live.

In the repository they are top-level folders (runtime_c/, templates/, boards/); in an installed
wheel they are the subpackages tinyc.runtime_c, tinyc.templates and tinyc.board_files (see
pyproject.toml). Both resolve through importlib, so editable and non-editable installs agree.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _package_dir(package: str, folder: str) -> Path:
    # The data folders are namespace packages (no __init__.py): their spec gives the folder.
    spec = importlib.util.find_spec(f"tinyc.{package}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    # Running from a source checkout without an install: compiler/tinyc -> repo root.
    return Path(__file__).resolve().parents[2] / folder


def runtime_dir() -> Path:
    """The C kernel library (runtime_c/)."""
    return _package_dir("runtime_c", "runtime_c")


def templates_dir() -> Path:
    """The Jinja2 templates for generated C and build files (templates/)."""
    return _package_dir("templates", "templates")


def boards_dir() -> Path:
    """Board descriptions, startup code and linker scripts (boards/)."""
    return _package_dir("board_files", "boards")
