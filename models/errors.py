"""A model file's mistakes in the user's words: one line naming the file and the line, exit code 2 (main.py).

    raise raised_in("model7", path, error)   # 'model7: models/model7.py, line 17 (in forward): RuntimeError: ...'
"""
import traceback
from pathlib import Path
from types import TracebackType

from core.settings import ConfigError

PROJECT_DIR = Path(__file__).resolve().parents[1]  # paths are shown from here, as the user types them
# Modules a model file once imported from, moved into folders by their job; a file written against them is told where.
MOVED = {"settings": "core.settings", "records": "core.records", "stats": "core.stats", "files": "core.files",
         "configs": "experiment.configs", "experiments": "experiment.definition"}


class UnknownModelError(ConfigError):
    pass


class ModelFileError(ConfigError):
    """A model file that cannot be used: it does not import, breaks the contract, or its own code raised. The message
    is one line in the user's words; `details` keeps Python's whole traceback, where there is one (--traceback)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def shown_path(path: Path) -> str:
    """A file as the user finds it: models/model6.py."""
    resolved = path.resolve()
    return resolved.relative_to(PROJECT_DIR).as_posix() if resolved.is_relative_to(PROJECT_DIR) else str(path)


def where_in_file(tb: TracebackType | None, path: Path) -> str:
    """'models/model6.py, line 23 (in forward)': the last place in `path` that the traceback passed through."""
    frames = [frame for frame in traceback.extract_tb(tb) if Path(frame.filename).resolve() == path.resolve()]
    if not frames:
        return shown_path(path)
    return f"{shown_path(path)}, line {frames[-1].lineno}" + ("" if frames[-1].name == "<module>"
                                                               else f" (in {frames[-1].name})")


def raised_in(name: str, path: Path, error: BaseException) -> ModelFileError:
    """An exception from a model file's own code as one line: the file's line, the error and its first line."""
    if isinstance(error, SyntaxError) and error.filename and Path(error.filename).resolve() == path.resolve():
        place = f"{shown_path(path)}, line {error.lineno}"
        message = f"SyntaxError: {error.msg}"
    elif isinstance(error, ModuleNotFoundError) and error.name in MOVED:
        place = where_in_file(error.__traceback__, path)
        message = (f"no module {error.name!r}: it moved to {MOVED[error.name]}; a model file imports what it takes "
                   "from the package from models.kit, e.g. `from models.kit import SGDRecipe, Target, setting`")
    else:
        place = where_in_file(error.__traceback__, path)
        first_line = (str(error).strip().splitlines() or [""])[0]
        message = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    details = "".join(traceback.format_exception(error))
    return ModelFileError(f"{name}: {place}: {message} (--traceback shows Python's traceback)", details)
