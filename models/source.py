"""The code a model file trains with, as a short hash that records carry: two runs with the same hash (and the same
recipe values) trained the same network the same way. Docstrings and comments are not part of it, so notes may
change freely; nor are the file's recipes, target and search space (see NOT_TRAINED); the modules of models/ that
the rest uses are.

    from models.source import source_hash
    source_hash(Path("models/model5.py"))   # '3f0c...' (16 hex digits)
"""
import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "models"

# A record keeps its recipe's values itself, a target only judges runs and a search space only guides --tune: a file
# that gains a named recipe or moves its bar keeps every record it has, as runs of the file as it stands.
NOT_TRAINED = frozenset({"RECIPE", "RECIPES", "TARGET", "search_space"})


def _without_docstrings(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]


def _root(target: ast.expr) -> str | None:
    """The name an assignment's target changes: `RECIPES` for `RECIPES["fast"] = ...`."""
    while isinstance(target, (ast.Subscript, ast.Attribute)):
        target = target.value
    return target.id if isinstance(target, ast.Name) else None


def _defines(node: ast.stmt) -> set[str | None]:
    """The names a top-level definition or assignment binds or changes."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {_root(target) for target in node.targets}
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return {_root(node.target)}
    return set()


def _bound_name(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".")[0]


def _trained_code(tree: ast.Module) -> None:
    """Leaves what a run trains with: the NOT_TRAINED statements out, then the imports nothing left uses."""
    tree.body = [node for node in tree.body if not ((names := _defines(node)) and names <= NOT_TRAINED)]
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    kept = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            node.names = [alias for alias in node.names if alias.name == "*" or _bound_name(alias) in used]
            if not node.names:
                continue
        kept.append(node)
    tree.body = kept


@functools.cache
def _read(path: Path, stamp: tuple[int, int]) -> tuple[str, tuple[str, ...]]:
    """A file as (what it does, the modules it imports): its syntax tree without docstrings (and so without comments)
    and without what it does not train with. Cached by the file's modification time and size: a report asks once per
    record."""
    tree = ast.parse(path.read_text(), filename=str(path))
    _without_docstrings(tree)
    _trained_code(tree)
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    return ast.dump(tree), tuple(imported)


def _code_and_imports(path: Path) -> tuple[str, tuple[str, ...]]:
    status = path.stat()
    return _read(path, (status.st_mtime_ns, status.st_size))


def _sources(path: Path, seen: set[Path]) -> set[Path]:
    """`path` and the modules of its folder (the models package) it uses, and theirs."""
    seen.add(path)
    for module in _code_and_imports(path)[1]:
        if module.startswith(f"{PACKAGE}."):
            found = path.parent / f"{module.split('.')[1]}.py"
            if found.exists() and found not in seen:
                _sources(found, seen)
    return seen


def source_hash(path: Path) -> str:
    """The code the file trains with and that of the models/ modules it uses, as 16 hex digits (a SyntaxError if it
    has one)."""
    digest = hashlib.sha256()
    for source in sorted(_sources(path, set())):
        digest.update(source.name.encode() + b"\0" + _code_and_imports(source)[0].encode() + b"\0")
    return digest.hexdigest()[:16]
