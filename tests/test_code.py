"""Rules of the code itself, held by tests rather than by a reviewer's eye."""

import ast
from pathlib import Path

SOURCES = sorted((Path(__file__).parent.parent / "socker").glob("*.py"))
MOST_POSITIONAL = 5


def positional_parameters(function):
    names = [arg.arg for arg in (*function.args.posonlyargs, *function.args.args)]
    return [name for name in names if name not in ("self", "cls")]


def test_no_function_takes_more_than_five_positional_parameters():
    # Beyond five, a call's meaning hangs on the order of its arguments: name them.
    assert SOURCES
    crowded = [f"{source.name}:{node.lineno} {node.name}{tuple(positional_parameters(node))}"
               for source in SOURCES for node in ast.walk(ast.parse(source.read_text()))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
               and len(positional_parameters(node)) > MOST_POSITIONAL]
    assert crowded == []
