"""Size limits of STYLE principle 5, checked so that later work keeps them: no file under
src/masklet over 400 lines, no function (docstring included) over 60."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "masklet"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def size_problems(path: Path, text: str) -> list[str]:
    """`file: ... lines` and `file:line name: ... lines` for each limit `text` exceeds."""
    problems = []
    lines = len(text.splitlines())
    if lines > MAX_FILE_LINES:
        problems.append(f"{path}: {lines} lines (limit {MAX_FILE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                problems.append(
                    f"{path}:{node.lineno} {node.name}: {length} lines (limit {MAX_FUNCTION_LINES})"
                )
    return problems


def test_files_and_functions_stay_small() -> None:
    problems = []
    for path in sorted(SOURCE.rglob("*.py")):
        problems += size_problems(path.relative_to(SOURCE.parent), path.read_text())
    assert not problems, "\n".join(problems)


def test_size_check_catches_long_code() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    long_function = f"def long():\n{body}\n"
    assert size_problems(Path("a.py"), long_function) == ["a.py:1 long: 61 lines (limit 60)"]
    assert size_problems(Path("b.py"), "x = 1\n" * 401) == ["b.py: 401 lines (limit 400)"]
    assert size_problems(Path("c.py"), "def short():\n    return 1\n") == []
