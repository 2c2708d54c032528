"""The package's shape: no import circles, torch-free reading of records, and pages that regenerate as they say."""
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import models
from report.pages import LOGS_END, LOGS_START, SUMMARY_END, SUMMARY_START
from tests.conftest import ROOT, main_cli

# The root keeps the design's names; every other module lives in a folder named for its job.
ROOT_MODULES = {"main", "run_experiments", "utils"}
NOT_IMPORTED = {"tests", "benchmarks"}  # they use the package; the package never imports them


def package_folders() -> list[str]:
    return sorted(path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name not in NOT_IMPORTED)


def module_files() -> dict[str, Path]:
    """The package's modules by dotted name: the root's and those of each folder with an __init__.py."""
    files = {path.stem: path for path in ROOT.glob("*.py")}
    for folder in package_folders():
        for path in (ROOT / folder).glob("*.py"):
            files[folder if path.stem == "__init__" else f"{folder}.{path.stem}"] = path
    return files


def test_the_root_holds_the_designs_names_and_folders_by_job():
    assert {path.stem for path in ROOT.glob("*.py")} == ROOT_MODULES
    assert not [path for path in ROOT.glob("*/*.py") if path.parent.name not in NOT_IMPORTED
                and not (path.parent / "__init__.py").exists()], "a folder of modules without an __init__.py"


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module of the package `path` imports, at the top or inside a function, TYPE_CHECKING aside."""
    found = set()
    tree = ast.parse(path.read_text())
    type_checking = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                     and getattr(block.test, "id", None) == "TYPE_CHECKING" for node in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def test_no_import_circles():
    files = module_files()
    graph = {name: imports_of(path, set(files)) - {name} for name, path in files.items()}
    # A package's submodule imports its __init__ first; that edge is Python's, not a design choice.
    graph = {name: {other for other in edges if not name.startswith(other + ".")} for name, edges in graph.items()}
    visiting, done, cycles = [], set(), []

    def visit(name: str) -> None:
        if name in visiting:
            cycles.append(visiting[visiting.index(name):] + [name])
            return
        if name in done:
            return
        visiting.append(name)
        for other in sorted(graph[name]):
            visit(other)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert "core.settings" in graph and graph["run_experiments"] and not cycles, cycles


# The package's layers, lowest first, as folders (and the root's modules): a module imports from its own layer and
# those below, never from one above. The README's Layout lists them in this order.
LAYERS = [
    {"core", "utils"},
    {"data", "models", "training"},
    {"experiment", "report"},
    {"run_experiments"},
    {"commands"},
    {"main"},
]


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    return next(index for index, layer in enumerate(LAYERS) if top in layer)


def test_no_module_imports_from_a_layer_above_its_own():
    files = module_files()
    upward = [(name, other) for name, path in files.items() for other in imports_of(path, set(files))
              if layer_of(other) > layer_of(name)]
    assert set().union(*LAYERS) == set(package_folders()) | ROOT_MODULES
    assert {layer_of(name) for name in files} == set(range(len(LAYERS))) and not upward, upward


def test_report_and_compare_share_one_definition_of_the_same_experiment():
    files = module_files()
    for user in ("commands.comparing", "report.tables"):
        assert "experiment.definition" in imports_of(files[user], set(files)), user
    defined = {node.name for user in ("commands.comparing", "report.tables", "report.pages")
               for node in ast.walk(ast.parse(files[user].read_text())) if isinstance(node, ast.FunctionDef)}
    assert not defined & {"ran_as", "group_name", "experiment_label", "is_seed_of", "network_changed"}, defined


def test_the_walk_finds_a_circle(tmp_path):
    """The walk itself can fail: two modules importing each other inside functions are a circle."""
    (tmp_path / "a.py").write_text("def f():\n    import b\n")
    (tmp_path / "b.py").write_text("from a import f\n")
    assert imports_of(tmp_path / "a.py", {"a", "b"}) == {"b"} and imports_of(tmp_path / "b.py", {"a", "b"}) == {"a"}


def test_settings_records_and_results_tables_import_no_torch():
    code = ("import sys; import core.settings, core.records, core.commandline, report.tables, models; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numpy')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


GENERATED = re.compile(r"by `(python main\.py --report[^`]*)`")


def generated_pages_in_repository() -> list[Path]:
    pages = [ROOT / "README.md", *ROOT.glob("results/**/README.md"), *ROOT.glob("results/**/study.md")]
    return [page for page in pages if GENERATED.search(page.read_text())]


def folders_of(command: str) -> list[Path]:
    """The run folders a page's `python main.py --report [GLOB]` reads, as the shell in the root expands them."""
    words = command.split()[3:]
    if not words:
        return sorted(path.parent for path in (ROOT / "results").glob("*/metrics.json"))
    return sorted(path for word in words for path in ROOT.glob(word) if path.is_dir())


@pytest.mark.publication
def test_every_generated_page_is_what_its_command_makes(mnist_dir, monkeypatch):
    """Each generated page is the text its own command makes from the committed records, made in this process without
    drawing its pictures (the slow tier types every command in a copy, pictures included)."""
    from experiment.studies import load_study
    from report.pages import RESULTS, generated_pages
    from report.study import summary_page

    monkeypatch.chdir(ROOT)  # a study's page names its folder as typed in the root
    pages = generated_pages_in_repository()
    assert {"README.md", "results/README.md"} <= {page.relative_to(ROOT).as_posix() for page in pages}
    logs = (ROOT / "README.md").read_text().split(LOGS_START, 1)[1].split(LOGS_END, 1)[0]
    assert "## Logs" in logs and "Total params: 7,944" in logs and logs.count("EPOCH: ") == 15
    assert "--recipe published" in logs and logs.count("Batch_id=468") == 15  # batch 128: 469 batches
    for page in pages:
        command = GENERATED.search(page.read_text()).group(1)
        if page.name == "study.md":
            study = load_study(Path(command.split()[3]))
            made = summary_page(study, study.read())
        else:
            folders = folders_of(command)
            readme = ROOT / "README.md" if folders[0].parent == RESULTS else None
            made = generated_pages(folders, readme, mnist_dir, draw=False)[page]
        assert made == page.read_text(), f"{page.relative_to(ROOT)}: `{command}` makes another page"


@pytest.mark.slow
@pytest.mark.publication
def test_every_generated_page_regenerates_as_written(tmp_path, mnist_dir):
    """Each page's own command, typed in a copy of the repository, gives the page back unchanged, pictures drawn."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "MNIST", "__pycache__",
                                                              ".pytest_cache", ".gpu"))
    for page in generated_pages_in_repository():
        copied = copy / page.relative_to(ROOT)
        text = copied.read_text()
        if SUMMARY_START in text:  # README.md: only its Results and Logs sections are generated
            for start, end in ((SUMMARY_START, SUMMARY_END), (LOGS_START, LOGS_END)):
                head, rest = text.split(start, 1)
                text = head + start + "\nstale\n" + end + rest.split(end, 1)[1]
            copied.write_text(text)
        else:
            copied.write_text("stale\n")
        command = GENERATED.search(page.read_text()).group(1)
        done = subprocess.run(command.replace("python", sys.executable, 1), shell=True, cwd=copy, text=True,
                              capture_output=True, env=os.environ | {"MNIST_DATA_DIR": str(mnist_dir)})
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        assert copied.read_text() == page.read_text(), f"{page}: `{command}` does not give it back"


def test_every_relative_link_in_a_page_finds_its_file():
    """Notes shown on pages in other folders keep their links: each relative link of every committed page resolves."""
    link = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)|href=\"([^\"#]+)\"")
    pages = [ROOT / "README.md", *ROOT.glob("*/README.md"), *ROOT.glob("results/**/*.md")]
    broken = [f"{page.relative_to(ROOT)}: {target}" for page in pages for match in link.finditer(page.read_text())
              for target in [match.group(1) or match.group(2)]
              if not re.match(r"[a-z]+:", target) and not (page.parent / target).exists()]
    assert not broken, broken


@pytest.mark.any_models
def test_the_quickest_models_run_first_when_none_is_named(mnist_dir, tmp_path):
    """Every model runs, in the order of the plan's estimates (timings of a few batches on this machine, so the
    test checks the order against the printed estimates, not against which model should be slowest)."""
    # Small batches: the plan times a few of every model's, Model1's included, and only their order is checked.
    done = main_cli("--epochs", "1", "--limit-train", "64", "--limit-test", "100", "--batch-size", "16",
                    "--test-batch-size", "100", "--device", "cpu", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    plan = done.stdout.split(f"Plan: {len(models.available())} runs, quickest first", 1)[1].split("total:", 1)[0]
    planned = re.findall(r"\d+\. (model\d+) seed 1, 1 epoch: ([\d.]+) (s|min|h)", plan)
    order = [model for model, _, _ in planned]
    seconds = [float(value) * {"s": 1, "min": 60, "h": 3600}[unit] for _, value, unit in planned]
    assert sorted(order) == sorted(models.available())
    assert seconds == sorted(seconds)
    started = [line.split("Config: ", 1)[1].split()[0] for line in done.stdout.splitlines() if line.startswith("Config: ")]
    assert started == order

def test_the_readmes_layout_names_every_folder_and_root_module_in_layer_order():
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    named = [line.split()[0].rstrip("/").removesuffix(".py") for line in layout.splitlines()
             if line.strip() and not line.startswith(" ")]
    ordered = [name for name in named if name in set().union(*LAYERS)]
    assert set(ordered) == set(package_folders()) | ROOT_MODULES
    assert [layer_of(name) for name in ordered] == sorted(layer_of(name) for name in ordered), ordered
