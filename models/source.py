"""A model file's code as a short hash, which records carry: two runs with the same hash (and the same recipe values)
trained the same network. Docstrings and comments are not part of it, so notes may change freely; the modules of
models/ that the file imports are.

    from models.source import source_hash
    source_hash(Path("models/model5.py"))   # '3f0c...' (16 hex digits)
"""
import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "models"


@functools.cache
def _read(path: Path, stamp: tuple[int, int]) -> tuple[str, tuple[str, ...]]:
    """A file as (what it does, the modules it imports): its syntax tree without docstrings (and so without comments).
    Cached by the file's modification time and size: a report asks once per record."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: list[str] = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.ImportFrom) and node.module:
            imported += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    return ast.dump(tree), tuple(imported)


def _code_and_imports(path: Path) -> tuple[str, tuple[str, ...]]:
    status = path.stat()
    return _read(path, (status.st_mtime_ns, status.st_size))


def _sources(path: Path, seen: set[Path]) -> set[Path]:
    """`path` and the modules of its folder (the models package) it imports, and theirs."""
    seen.add(path)
    for module in _code_and_imports(path)[1]:
        if module.startswith(f"{PACKAGE}."):
            found = path.parent / f"{module.split('.')[1]}.py"
            if found.exists() and found not in seen:
                _sources(found, seen)
    return seen


def source_hash(path: Path) -> str:
    """The file's code and that of the models/ modules it imports, as 16 hex digits (a SyntaxError if it has one)."""
    digest = hashlib.sha256()
    for source in sorted(_sources(path, set())):
        digest.update(source.name.encode() + b"\0" + _code_and_imports(source)[0].encode() + b"\0")
    return digest.hexdigest()[:16]
