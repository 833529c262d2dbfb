"""Rules of the code itself, held by tests rather than by a reviewer's eye."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "socker"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MOST_POSITIONAL = 5
# The layers of socker/__init__.py's docstring, lowest first: a module imports from its own
# layer or those below. "registry" and "run" share a layer and do not import each other.
LAYERS = (
    {"errors", "value", "model", "text", "environ"},
    {"host"},
    {"audit", "imageref", "registrytrust", "config", "policy", "engine"},
    {"registry", "run"},
    {"cli", "commands", "__main__", "__init__"},
)


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


def unit(path):
    """The layer's name for a module: its subpackage, or its own name at the top."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def layer(name):
    return next(i for i, names in enumerate(LAYERS) if name in names)


def imported_units(source):
    """The units `source` imports from, by its relative imports."""
    package = source.relative_to(PACKAGE).parent.parts
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            target = (*base, *(node.module.split(".") if node.module else ()))
            names = [target] if target else [(alias.name,) for alias in node.names]
            found |= {parts[0] for parts in names if parts}
    return {"__init__" if name == "__version__" else name for name in found}  # the package's own attribute


def test_every_module_belongs_to_a_layer():
    assert sorted({unit(source) for source in SOURCES} - set().union(*LAYERS)) == []


def test_imports_run_down_the_layers_and_registry_and_run_stay_apart():
    wrong = [f"{source.relative_to(PACKAGE)} imports {target}"
             for source in SOURCES for target in imported_units(source)
             if target != unit(source) and (layer(target) > layer(unit(source))
                                            or {unit(source), target} == {"registry", "run"})]
    assert wrong == []
