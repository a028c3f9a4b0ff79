"""The import rules of DESIGN §13, checked from the source (no masklet module is imported).

Every `.py` under `src/masklet` is parsed; each `masklet.*` import it makes (`import x`,
`from x import y`, relative imports, imports inside functions or `if TYPE_CHECKING:` blocks,
and `importlib.import_module("masklet...")` with a literal name) is checked against
`MAY_IMPORT`. A *unit* is a subpackage (`model`, `session`, ...) or a top-level module
(`config`, `runtime`, ...); `__init__` is `masklet/__init__.py`. Imports inside one unit are
always allowed, and so are the leaf modules in `LEAVES`.

The model must also never read the host (precision and attention path are explicit
arguments): files under `model/` import only `MODEL_EXTERNAL_IMPORTS` outside masklet, and
call no `open(...)`, `torch.load/save`, `torch.hub`, or host probes such as
`torch.cuda.is_available()`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SOURCE_ROOT = Path(__file__).resolve().parents[1] / "src" / "masklet"

#: Modules everyone may import. Each imports nothing of masklet itself.
LEAVES = frozenset({"errors", "lru", "postprocess"})
#: Units nothing may import (DESIGN §13), except as `IMPORTABLE_BY` says.
NEVER_IMPORTED = frozenset({"cli", "app", "train", "batch"})
#: ... and the exceptions: who launches them.
IMPORTABLE_BY = {"cli": frozenset({"__main__"})}

_TOP_LEVEL = frozenset(
    {
        "model",
        "config",
        "checkpoint",
        "weights",
        "runtime",
        "session",
        "io",
        "amg",
        "eval",
        "bench",
        "predictors",
        "build",
        "build_settings",
        "train",
        "export",
        "app",
        "batch",
        "notebook",
        "build_sam",
        "sam2_image_predictor",
        "sam2_video_predictor",
        "automatic_mask_generator",
        "__init__",
    }
)
#: The public surface (`masklet/__init__`, the drop-in alias modules, the notebook helpers)
#: may use any library layer, but not the applications.
_LIBRARY = _TOP_LEVEL - NEVER_IMPORTED

#: Unit -> the units (or dotted modules, `unit.module`) it may import, besides `LEAVES` and
#: itself. Future units (`train`, `export`, `app`, `batch`) are listed so that they start
#: under the rules.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "lru": frozenset(),
    "postprocess": frozenset(),
    "config": frozenset({"errors"}),
    "reference_config": frozenset({"config"}),
    "model": frozenset({"config"}),
    "checkpoint": frozenset({"config", "model"}),
    # Shipping weights writes the package's files atomically (`masklet.io.files`).
    "weights": frozenset({"checkpoint", "config", "io"}),
    # The runtime reads the host to choose the model's arguments; it returns them as the
    # model's own type, `masklet.model.compute.ComputeOptions`, and needs nothing else of it.
    "runtime": frozenset({"model.compute"}),
    "session": frozenset({"model", "config"}),
    "io": frozenset(),
    "amg": frozenset({"io"}),
    "eval": frozenset({"io"}),
    "bench": frozenset({"io"}),
    "predictors": frozenset({"session", "model", "config", "io", "amg", "runtime"}),
    "build_settings": frozenset({"config"}),
    "build": frozenset(
        {"config", "build_settings", "checkpoint", "model", "predictors", "weights", "runtime"}
    ),
    # Validation during training scores J&F with the evaluation metrics (eval imports io only).
    "train": frozenset(
        {"model", "session", "io", "bench", "eval", "config", "checkpoint", "runtime"}
    ),
    "export": frozenset({"model", "config", "checkpoint", "runtime"}),
    "app": frozenset(
        {"predictors", "session", "io", "weights", "build", "config", "eval", "runtime"}
    ),
    "batch": frozenset({"predictors", "io", "eval", "weights", "build", "config", "runtime"}),
    "notebook": _LIBRARY,
    "build_sam": _LIBRARY,
    "sam2_image_predictor": _LIBRARY,
    "sam2_video_predictor": _LIBRARY,
    "automatic_mask_generator": _LIBRARY,
    "__init__": _LIBRARY,
    "cli": _TOP_LEVEL | LEAVES,
    "__main__": frozenset({"cli"}),
}

#: What model files may import outside masklet (widen only with a reason written here).
MODEL_EXTERNAL_IMPORTS = frozenset({"__future__", "torch", "math", "dataclasses", "typing"})
#: Standard modules that reach the host: named in their own message when the model uses them.
HOST_MODULES = frozenset(
    {"os", "sys", "pathlib", "platform", "subprocess", "socket", "ctypes", "io", "shutil"}
)
#: Attribute chains by which model code would touch files, the network or the machine.
HOST_CALL_PREFIXES = ("torch.load", "torch.save", "torch.hub", "torch.cuda", "torch.backends")


def unit_of_path(relative: Path) -> str:
    """The unit of a file, from its path relative to the `masklet` package directory."""
    if len(relative.parts) > 1:
        return relative.parts[0]
    return relative.stem


def module_parts(relative: Path) -> list[str]:
    """`model/sam2.py` -> `["model", "sam2"]`; a package's `__init__.py` is the package."""
    parts = list(relative.with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _is_module(root: Path, parts: list[str]) -> bool:
    target = root.joinpath(*parts)
    return target.with_suffix(".py").is_file() or target.is_dir()


def _absolute_from(node: ast.ImportFrom, relative: Path) -> str:
    """The absolute module name of a `from ... import` (relative ones resolved)."""
    if node.level == 0:
        return node.module or ""
    package = ["masklet", *relative.parent.parts]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imported_names(node: ast.AST, relative: Path, root: Path) -> list[str]:
    """Absolute module names one AST node imports; `from a import b` names `a.b` when `b`
    is a masklet submodule."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        module = _absolute_from(node, relative)
        if module.split(".")[0] != "masklet":
            return [module]
        base = module.split(".")[1:]
        subs = [[*base, a.name] for a in node.names if _is_module(root, [*base, a.name])]
        return [".".join(["masklet", *sub]) for sub in subs] or [module]
    return [_import_module_argument(node)] if isinstance(node, ast.Call) else []


def _import_module_argument(node: ast.Call) -> str:
    """The literal name of `importlib.import_module("<name>")` (or a bare `import_module`);
    `""` for any other call."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = node.args[0] if node.args else None
    if name == "import_module" and isinstance(first, ast.Constant):
        return str(first.value)
    return ""


def masklet_imports(tree: ast.AST, relative: Path, root: Path) -> Iterator[tuple[int, str]]:
    """`(line, module)` for every masklet import in `tree`, the module relative to `masklet`
    (`""` is `masklet/__init__`)."""
    for node in ast.walk(tree):
        for name in _imported_names(node, relative, root):
            if name == "masklet" or name.startswith("masklet."):
                yield getattr(node, "lineno", 0), name.removeprefix("masklet").removeprefix(".")


def unit_of_module(module: str) -> str:
    """`"model.sam2"` -> `"model"`; `""` (the package itself) -> `"__init__"`."""
    return module.split(".")[0] if module else "__init__"


def may_import(importer: str, module: str) -> bool:
    """Whether unit `importer` may import `module` (relative to `masklet`)."""
    target = unit_of_module(module)
    if target == importer or target in LEAVES:
        return True
    allowed = MAY_IMPORT[importer]
    return any(module == entry or module.startswith(entry + ".") for entry in allowed) or (
        target in allowed
    )


def _rule(importer: str) -> str:
    """The rule `importer` breaks, in words."""
    if importer in LEAVES:
        return f"{importer} is a leaf: it imports nothing of masklet"
    leaves = f"the leaves {', '.join(sorted(LEAVES))}"
    if MAY_IMPORT[importer] == _LIBRARY:
        return f"{importer} may import any unit but cli/app/train/batch"
    allowed = ", ".join(sorted(MAY_IMPORT[importer]))
    return f"{importer} may import only {allowed or 'nothing'} besides {leaves}"


def _unknown(unit: str, where: str) -> str:
    return (
        f"{where}: unit {unit!r} is not in the layer table: add it to MAY_IMPORT in "
        "tests/test_layers.py with the units it may import (DESIGN §13)"
    )


def import_violations(relative: Path, tree: ast.AST, root: Path) -> list[str]:
    """Layer-rule violations of one file (`relative` to the package directory)."""
    importer = unit_of_path(relative)
    where = f"src/masklet/{relative.as_posix()}"
    if importer not in MAY_IMPORT:
        return [_unknown(importer, where)]
    found = []
    for line, module in masklet_imports(tree, relative, root):
        target = unit_of_module(module)
        name = f"masklet.{module}" if module else "masklet"
        if target not in MAY_IMPORT:
            found.append(_unknown(target, f"{where}:{line} (imports {name})"))
        elif not may_import(importer, module):
            found.append(f"{where}:{line}: {importer} -> {target} ({name}): {_rule(importer)}")
    return found


def _dotted(node: ast.AST) -> str:
    """`torch.cuda.is_available` for an attribute chain, `""` for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


def host_violations(relative: Path, tree: ast.AST) -> list[str]:
    """Ways a model file could read the host: imports outside `MODEL_EXTERNAL_IMPORTS`, calls
    of `open`, and the `HOST_CALL_PREFIXES` attribute chains."""
    where = f"src/masklet/{relative.as_posix()}"
    found = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        for module in modules:
            top = module.split(".")[0]
            if top in HOST_MODULES:
                found.append(f"{where}:{node.lineno}: model imports {module}: it reads the host")
            elif top != "masklet" and top not in MODEL_EXTERNAL_IMPORTS:
                allowed = sorted(MODEL_EXTERNAL_IMPORTS)
                found.append(f"{where}:{node.lineno}: model imports {module}: only {allowed}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
            found.append(f"{where}:{node.lineno}: model calls open(): no file access")
        chain = _dotted(node) if isinstance(node, ast.Attribute) else ""
        for prefix in HOST_CALL_PREFIXES:
            if chain == prefix or chain.startswith(prefix + "."):
                found.append(f"{where}:{node.lineno}: model uses {prefix}: it reads the host")
    return sorted(set(found))  # `torch.cuda.x` is also visited as its part `torch.cuda`


def check_tree(root: Path) -> list[str]:
    """Every violation under the package directory `root`, in file order."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += import_violations(relative, tree, root)
        if unit_of_path(relative) == "model":
            found += host_violations(relative, tree)
    return found


def _report(violations: list[str]) -> str:
    return f"{len(violations)} layer violation(s) (DESIGN §13):\n" + "\n".join(violations)


def test_package_follows_the_layer_rules() -> None:
    assert SOURCE_ROOT.is_dir()
    violations = check_tree(SOURCE_ROOT)
    assert not violations, _report(violations)


def test_table_keeps_the_applications_unimported() -> None:
    for unit, allowed in MAY_IMPORT.items():
        for entry in allowed:
            target = unit_of_module(entry)
            assert target in MAY_IMPORT, f"{unit} -> {entry}: not a unit of the table"
            if target in NEVER_IMPORTED and unit != "cli":
                assert unit in IMPORTABLE_BY.get(target, ()), f"{unit} may import {target}"
    assert all(not MAY_IMPORT[leaf] for leaf in LEAVES)


def test_every_existing_unit_is_in_the_table() -> None:
    units = {unit_of_path(path.relative_to(SOURCE_ROOT)) for path in SOURCE_ROOT.rglob("*.py")}
    assert units <= set(MAY_IMPORT), _unknown(str(sorted(units - set(MAY_IMPORT))), "package")


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "masklet" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "masklet"


SYNTHETIC_VIOLATIONS = {
    "__init__.py": "from masklet.config import X\n",
    "config.py": "import masklet.errors\n",
    "errors.py": "",
    "runtime.py": "from masklet.model.compute import ComputeOptions\nimport masklet.model.sam2\n",
    "model/__init__.py": "",
    "model/compute.py": "",
    "model/sam2.py": (
        "import os\nimport numpy\nfrom . import compute\nfrom ..config import C\n"
        "def f():\n    from masklet.runtime import x\n    open('w')\n"
        "    return torch.cuda.is_available()\n"
    ),
    "session/__init__.py": "from masklet import io\n",
    "io/__init__.py": "",
    "notebook.py": "import importlib\nimportlib.import_module('masklet.cli.main')\n",
    "cli/__init__.py": "from masklet.app import serve\n",
    "widgets/__init__.py": "",
}


def test_checker_reports_each_kind_of_violation(tmp_path: Path) -> None:
    found = check_tree(_write(tmp_path, SYNTHETIC_VIOLATIONS))
    expected = [
        "runtime.py:2: runtime -> model (masklet.model.sam2)",
        "model/sam2.py:6: model -> runtime (masklet.runtime)",
        "model/sam2.py:1: model imports os: it reads the host",
        "model/sam2.py:2: model imports numpy: only",
        "model/sam2.py:7: model calls open()",
        "model/sam2.py:8: model uses torch.cuda: it reads the host",
        "session/__init__.py:1: session -> io (masklet.io)",
        "notebook.py:2: notebook -> cli (masklet.cli.main)",
        "widgets/__init__.py: unit 'widgets' is not in the layer table",
    ]
    for fragment in expected:
        assert sum(fragment in line for line in found) == 1, (fragment, _report(found))
    # Everything else in the tree is allowed: relative imports inside model, runtime ->
    # model.compute, cli -> app (a future unit, known before it has files).
    assert len(found) == len(expected), _report(found)


@pytest.mark.parametrize(
    ("importer", "module", "allowed"),
    [
        ("runtime", "model.compute", True),
        ("runtime", "model", False),
        ("predictors", "build", False),
        ("build", "predictors.video", True),
        ("model", "errors", True),
        ("errors", "config", False),
        ("__main__", "cli", True),
        ("notebook", "cli.outputs", False),
        ("cli", "app", True),
    ],
)
def test_rule_table_examples(importer: str, module: str, allowed: bool) -> None:
    assert may_import(importer, module) is allowed
