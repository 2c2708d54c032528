"""The code a model file trains with, as a short hash that records carry: two runs with the same hash (and the same
recipe values) trained the same network the same way. Docstrings and comments are not part of it, so notes may
change freely; nor are the file's recipes, target and search space (see NOT_TRAINED); nor where it imports the
package's names from (models.kit today, other modules before), so moving a module keeps every record; the modules of
models/ that define what the rest uses are.

    from models.source import source_hash
    source_hash(Path("models/model5.py"))   # '3f0c...' (16 hex digits)
"""
import ast
import functools
import hashlib
from dataclasses import dataclass
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


def _own(module: str) -> bool:
    """A module of this package (a folder or a module beside models/), not a library."""
    top = module.split(".")[0]
    root = Path(__file__).resolve().parents[1]
    return (root / top).is_dir() or (root / f"{top}.py").is_file()


@dataclass(frozen=True)
class _File:
    """A file as the hash reads it: what it does statement by statement, and where the package's names stood."""
    statements: tuple[str, ...]  # ast.dump of each statement it trains with, the package's imports out
    imports_at: int  # where its first import from the package stood among them
    taken: tuple[tuple[str, str | None, str], ...]  # (name, as name, module) for each name its code takes from the package
    defines: frozenset[str]
    offers: dict[str, str]  # every name it imports from the package (a re-export too), by the module it comes from


def _trained_code(tree: ast.Module) -> tuple[int, list[tuple[str, str | None, str]]]:
    """Leaves what a run trains with: the NOT_TRAINED statements out, then the imports nothing left uses, then the
    package's own imports (returned: where the first stood, and each name with its module)."""
    tree.body = [node for node in tree.body if not ((names := _defines(node)) and names <= NOT_TRAINED)]
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    kept, taken, imports_at = [], [], None
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            node.names = [alias for alias in node.names if alias.name == "*" or _bound_name(alias) in used]
            if not node.names:
                continue
            modules = [node.module] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
            if all(module and _own(module) for module in modules):
                imports_at = len(kept) if imports_at is None else imports_at
                taken += ([(alias.name, alias.asname, node.module) for alias in node.names]
                          if isinstance(node, ast.ImportFrom) else [("", alias.asname, alias.name) for alias in node.names])
                continue
        kept.append(node)
    tree.body = kept
    return len(kept) if imports_at is None else imports_at, taken


@functools.cache
def _read(path: Path, stamp: tuple[int, int]) -> _File:
    """A file without docstrings (and so without comments), without what it does not train with and without the
    package's imports. Cached by the file's modification time and size: a report asks once per record."""
    tree = ast.parse(path.read_text(), filename=str(path))
    _without_docstrings(tree)
    defines = frozenset(name for node in tree.body for name in _defines(node) if name)
    offers = {alias.asname or alias.name: node.module for node in tree.body
              if isinstance(node, ast.ImportFrom) and node.module and _own(node.module) for alias in node.names}
    imports_at, taken = _trained_code(tree)
    return _File(tuple(ast.dump(node) for node in tree.body), imports_at, tuple(taken), defines, offers)


def _file(path: Path) -> _File:
    status = path.stat()
    return _read(path, (status.st_mtime_ns, status.st_size))


def _defining_file(folder: Path, module: str, name: str, seen: frozenset = frozenset()) -> Path | None:
    """The file of models/ that defines `name` as `module` offers it, through re-exports (models.kit's); None for a
    name from outside models/ (recipes, targets: a record keeps their values itself)."""
    if module != PACKAGE and not module.startswith(f"{PACKAGE}."):
        return None
    path = folder / (f"{module.split('.')[1]}.py" if "." in module else "__init__.py")
    if not path.exists() or (module, name) in seen:
        return None
    if not name or name in _file(path).defines:
        return path
    offers = _file(path).offers
    return _defining_file(folder, offers[name], name, seen | {(module, name)}) if name in offers else None


def _code(path: Path) -> str:
    """What the file does, its names from models/ imported as from the modules that define them (sorted), where its
    first import from the package stood: moving a name between modules, or importing it through models.kit, leaves
    the code as it was."""
    read, canonical = _file(path), {}
    for name, asname, module in read.taken:
        found = _defining_file(path.parent, module, name)
        if found and name:
            canonical.setdefault(f"{PACKAGE}.{found.stem}", []).append(ast.alias(name=name, asname=asname))
    imports = [ast.dump(ast.ImportFrom(module=module, names=sorted(aliases, key=lambda a: a.name), level=0))
               for module, aliases in sorted(canonical.items())]
    statements = [*read.statements[:read.imports_at], *imports, *read.statements[read.imports_at:]]
    return "Module(body=[" + ", ".join(statements) + "], type_ignores=[])"


def _sources(path: Path, seen: set[Path]) -> set[Path]:
    """`path` and the files of its folder (the models package) that define what it takes from the package, and
    theirs."""
    seen.add(path)
    for name, _, module in _file(path).taken:
        found = _defining_file(path.parent, module, name)
        if found and found not in seen:
            _sources(found, seen)
    return seen


def source_hash(path: Path) -> str:
    """The code the file trains with and that of the models/ modules defining what it uses, as 16 hex digits (a
    SyntaxError if it has one)."""
    digest = hashlib.sha256()
    for source in sorted(_sources(path, set())):
        digest.update(source.name.encode() + b"\0" + _code(source).encode() + b"\0")
    return digest.hexdigest()[:16]
