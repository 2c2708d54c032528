"""Getting MNIST and proving it is MNIST: find, fetch, rebuild and verify the four raw IDX files."""
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.files import atomic_write_bytes

DEFAULT_DATA_DIR = "./data"
DATA_DIR_ENV = "MNIST_DATA_DIR"


@dataclass(frozen=True)
class RawFile:
    name: str
    size: int
    md5: str


RAW_FILES = (
    RawFile("train-images-idx3-ubyte", 47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
    RawFile("train-labels-idx1-ubyte", 60_008, "a25bea736e30d166cdddb491f175f624"),
    RawFile("t10k-images-idx3-ubyte", 7_840_016, "2646ac647ad5339dbf082846283269ea"),
    RawFile("t10k-labels-idx1-ubyte", 10_008, "27ae3e4e09519cfbb04c329615203637"),
)


class DataError(RuntimeError):
    """MNIST could not be found or rebuilt; the message says how to place the files by hand."""


@dataclass(frozen=True)
class Source:
    """A place the raw files can come from: `fetch` returns their contents keyed by file name."""
    description: str
    fetch: Callable[[Path], dict[str, bytes]]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def raw_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "MNIST" / "raw"


def md5_of(payload: bytes) -> str:
    return hashlib.md5(payload).hexdigest()


def problems(raw: Path) -> dict[str, str]:
    """File name -> what is wrong with it, for each raw file that is missing or not canonical."""
    found = {}
    for expected in RAW_FILES:
        path = raw / expected.name
        if not path.is_file():
            found[expected.name] = "missing"
        elif path.stat().st_size != expected.size:
            found[expected.name] = f"{path.stat().st_size:,} bytes, expected {expected.size:,}"
        elif md5_of(path.read_bytes()) != expected.md5:
            found[expected.name] = "MD5 mismatch"
    return found


def fetch_with_torchvision(scratch: Path) -> dict[str, bytes]:
    from torchvision.datasets import MNIST

    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            MNIST(str(scratch), download=True)
    except Exception as error:
        offline = "urlopen error" in chatter.getvalue() or "urlopen error" in str(error)
        raise RuntimeError("offline" if offline else str(error)) from None
    return {f.name: (scratch / "MNIST" / "raw" / f.name).read_bytes() for f in RAW_FILES}


def fetch_from_mirror(scratch: Path) -> dict[str, bytes]:
    from data import mirror

    return mirror.fetch_raw_files()


def default_sources() -> list[Source]:
    from data.mirror import DESCRIPTION

    return [Source("torchvision download", fetch_with_torchvision),
            Source(f"rebuilding from {DESCRIPTION}", fetch_from_mirror)]


def hand_placement_help(raw: Path) -> str:
    rows = "\n".join(f"  {f.name:<26} {f.size:>12,} bytes  MD5 {f.md5}" for f in RAW_FILES)
    return f"MNIST is not available. Place these four uncompressed files in {raw}/ and run again:\n{rows}"


# Folders this process has hashed, with their files' sizes and times then: MNIST is hashed once per process,
# and again only if a file changed since.
_verified: dict[Path, tuple] = {}


def _file_stamps(raw: Path) -> tuple:
    try:
        return tuple((s.st_size, s.st_mtime_ns) for s in ((raw / f.name).stat() for f in RAW_FILES))
    except OSError:
        return ()


def ensure_mnist(data_dir: str | os.PathLike | None = None, sources: list[Source] | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Make sure `<data_dir>/MNIST/raw` holds the canonical MNIST files; return that folder.

    Files already there are kept when their MD5s match. Otherwise each source is tried in turn;
    a file is written (atomically) only after its own MD5 matched, so nothing unverified is ever
    left where a dataset would read it.
    """
    raw = raw_folder(resolve_data_dir(data_dir))
    wrong = {} if _verified.get(raw.resolve()) == _file_stamps(raw) else problems(raw)
    if not wrong:
        log(f"MNIST found in {raw}: verified (4 files, MD5 ok)")
        _verified[raw.resolve()] = _file_stamps(raw)
        return raw
    if all(problem == "missing" for problem in wrong.values()):
        log(f"MNIST not found in {raw}")
    else:
        log(f"MNIST in {raw} failed verification: " + ", ".join(f"{n} ({p})" for n, p in wrong.items()))

    raw.mkdir(parents=True, exist_ok=True)
    expected = {f.name: f for f in RAW_FILES}
    for source in sources if sources is not None else default_sources():
        scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=raw.parent))
        try:
            fetched = source.fetch(scratch)
            bad = [name for name in wrong if md5_of(fetched.get(name, b"")) != expected[name].md5]
            if bad:
                raise RuntimeError(f"MD5 mismatch in {', '.join(bad)}")
            for name in wrong:
                atomic_write_bytes(raw / name, fetched[name])
        except Exception as error:
            log(f"{source.description} failed ({error})")
            continue
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        wrong = problems(raw)
        if not wrong:
            log(f"{source.description} ... verified (4 files, MD5 ok)")
            _verified[raw.resolve()] = _file_stamps(raw)
            return raw
        log(f"{source.description} left files that fail verification: {', '.join(wrong)}")
    raise DataError(hand_placement_help(raw))
