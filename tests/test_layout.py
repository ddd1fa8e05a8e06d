"""The library's layout: the data-model wing imports only the ground floor, and no module imports itself in a circle."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "gendef"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set:
    """Every gendef module this file imports, at the top or inside functions (resolved to module names)."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gendef"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "gendef":
                continue
            for a in node.names:  # "from gendef.video import io" imports the module gendef.video.io
                sub = f"{target}.{a.name}"
                found.add(sub if _module_path(sub) else target)
    return {m for m in found if _module_path(m)}


def _module_path(name: str):
    base = ROOT.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _graph() -> dict:
    return {_module_name(p): _imports(p) - {_module_name(p)} for p in PKG.rglob("*.py")}


def test_the_video_wing_imports_only_errors_and_imageutil():
    graph = _graph()
    bad = {m: sorted(d for d in deps if not d.startswith("gendef.video") and d not in ("gendef.errors", "gendef.imageutil"))
           for m, deps in graph.items() if m.startswith("gendef.video")}
    assert len(bad) >= 8, sorted(bad)  # the wing's modules were all found
    assert not any(bad.values()), {m: d for m, d in bad.items() if d}


def _cycle(graph: dict):
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if d.startswith(m + "."):  # a package importing its own submodule is not a circle
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_circle_in_the_library():
    graph = _graph()
    assert len(graph) > 60
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_circle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("old", ["gendef/video.py", "gendef/videoio.py", "gendef/model.py", "gendef/model_config.py",
                                 "gendef/models", "gendef/losses.py", "gendef/npzfile.py", "gendef/audio.py",
                                 "gendef/fullsize.py", "gendef/frame_edit.py", "app/models.py"])
def test_old_module_paths_are_gone(old):
    assert not (ROOT / old).exists()


def test_every_constructor_argument_of_gendef_is_documented():
    from gendef import GenDeF

    doc = GenDeF.__doc__
    missing = [k for k in GenDeF.config_keys() if f"\n        {k}:" not in doc]
    assert len(GenDeF.config_keys()) >= 27 and not missing, missing


def _imports_tests(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        if any(n.split(".")[0] == "tests" or "reference_layers" in n for n in names):
            return True
    return False


def test_the_model_never_imports_the_reference_layers():
    """The test oracle lives with the tests, outside the package, and nothing in the package imports it."""
    assert (ROOT / "tests" / "reference_layers.py").is_file()
    assert not list(PKG.rglob("reference_layers.py"))
    users = sorted(str(p.relative_to(ROOT)) for p in PKG.rglob("*.py") if _imports_tests(p))
    assert users == [], users
    assert _imports_tests(ROOT / "tests" / "test_backbones.py")  # the check sees an import of the oracle


DESCRIPTION_COLUMN = 18  # README's layout block: folder names left of this column, what they hold from it on


def _layout_blocks(readme: str) -> dict:
    """README's "## Layout" block -> {folder path: the text describing it}. A line with text left of
    the description column names folders ("app.py, app/"; indented two spaces per level); the lines
    after it, blank there, continue its description."""
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    blocks, parents, current = {}, [], []
    for line in section.split("```")[1].splitlines():
        head, text = line[:DESCRIPTION_COLUMN], line[DESCRIPTION_COLUMN:]
        if head.strip():
            depth = (len(head) - len(head.lstrip())) // 2
            folders = [n.strip()[:-1] for n in head.split(",") if n.strip().endswith("/")]
            parents = parents[:depth] + folders[-1:]
            current = ["/".join(parents[:depth] + [f]) for f in folders]
        for folder in current:
            blocks[folder] = blocks.get(folder, "") + " " + text
    return blocks


def _named(module: str, text: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(module)}(?!\w)", text) is not None


def test_readme_layout_names_every_module_under_its_folder():
    blocks = _layout_blocks((ROOT / "README.md").read_text())
    assert {"app", "gendef", "gendef/video", "gendef/generator/networks", "train", "benchmarks"} <= set(blocks)
    modules = [p for top in ("gendef", "app", "train", "benchmarks") for p in (ROOT / top).rglob("*.py")
               if not p.name.startswith("__")]
    missing = [str(p.relative_to(ROOT)) for p in modules
               if not _named(p.name, blocks.get(str(p.parent.relative_to(ROOT)), ""))]
    assert len(modules) > 100 and not missing, f"README's layout does not name (as name.py, in its folder's entry): {missing}"
    assert _named("reader.py", blocks["gendef/video"]) and not _named("reader.py", blocks["gendef/generator"])
    assert not _named("reader.py", " the one video reader: probe") and not _named("io.py", " audio.py")


def test_the_video_package_docstring_names_every_module():
    import gendef.video

    names = [p.stem for p in (PKG / "video").glob("*.py") if not p.name.startswith("__")]
    missing = [n for n in names if f"gendef.video.{n}`" not in gendef.video.__doc__]
    assert len(names) >= 9 and not missing, missing


def test_no_module_repeats_its_package_name():
    """gendef/generator/gendef.py read as gendef.generator.gendef; a module's name says what it adds."""
    repeats = [str(p.relative_to(ROOT)) for top in ("gendef", "app", "train", "benchmarks") for p in (ROOT / top).rglob("*.py")
               if p.stem in {part for part in p.relative_to(ROOT).parent.parts}]
    assert not repeats, f"module names that repeat a package name: {repeats}"
