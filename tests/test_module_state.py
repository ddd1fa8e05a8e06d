"""No hidden process-wide state in app/ or gendef/: a module keeps constants, never a cache, a
registry or a loaded model (issue 29, item 3). The studio's one ``app.services.Services`` holds
those and is passed where needed; the library's callers hold theirs (``gendef.editing.slot.Slot``).

Found by reading the source (AST), so a new module-level cache fails here before it ships:
- a module- or class-level name bound to a dict/list/set (literal, comprehension or constructor),
  a lock, a counter, or an instance of a class the module defines (unless a frozen dataclass);
- a ``global`` statement (the "None at import, filled later" pattern);
- a write into a module's constant table (``TABLE[k] = v``, ``TABLE.append(...)``, ``TABLE += ...``),
  or the table handed to a local name (``cache = _CACHED if cache is None else cache``) to be written there.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "gendef")

# Tables named in UPPER_CASE (``__all__``, ``CONTROL_TYPES``, ``_ANNOTATOR_FILES``...) are constants:
# built at import, only read afterwards; the write check below keeps them so.
# Everything else that is mutable at module level must be listed here, with the reason it is process-wide.
ALLOWED = {
    # OpenCV's log level and OPENCV_FFMPEG_LOGLEVEL are process-wide settings, so the lock and the
    # depth counter that save and restore them around overlapping reads are one per process too.
    ("gendef/video/decoder_logging.py", "_HOLD"),
}

CONSTRUCTORS = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque", "Lock", "RLock",
                "Semaphore", "Event", "Condition", "local", "count", "WeakKeyDictionary", "WeakValueDictionary"}
MUTATORS = {"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear", "remove", "add",
            "discard", "__setitem__", "__delitem__"}
LITERALS = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)


def _is_constant_name(name: str) -> bool:
    bare = name.strip("_")
    return name == "__all__" or (bare == bare.upper() and any(c.isalpha() for c in bare))


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def _frozen(cls: ast.ClassDef) -> bool:
    return any(isinstance(d, ast.Call) and any(k.arg == "frozen" and getattr(k.value, "value", False) for k in d.keywords)
               for d in cls.decorator_list)


def _mutable(value, own_classes: dict) -> bool:
    if isinstance(value, LITERALS):
        return True
    if isinstance(value, ast.Call):
        name = _callee(value)
        return name in CONSTRUCTORS or (name in own_classes and not _frozen(own_classes[name]))
    return False


def _bindings(body, where: str, own_classes: dict):
    """(line, name, where) for each name bound to a mutable value in a module or class body."""
    for node in body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _mutable(node.value, own_classes):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                yield node.lineno, ast.unparse(t), where
        if isinstance(node, ast.ClassDef) and where == "module":
            yield from _bindings(node.body, node.name, own_classes)


def _writes(tree, constants: set):
    """(line, text) for each write into one of ``constants`` (by name, or as ``module.NAME``)."""

    def named(x):
        return (isinstance(x, ast.Name) and x.id in constants) or (isinstance(x, ast.Attribute) and x.attr in constants)

    for n in ast.walk(tree):
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = n.targets if isinstance(n, (ast.Assign, ast.Delete)) else [n.target]
            for t in targets:
                if (isinstance(t, ast.Subscript) and named(t.value)) or (isinstance(n, ast.AugAssign) and named(t)):
                    yield n.lineno, ast.unparse(t)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in MUTATORS and named(n.func.value):
            yield n.lineno, ast.unparse(n.func)
        if isinstance(n, ast.FunctionDef):
            for a in ast.walk(n):
                if isinstance(a, ast.Assign) and _aliased(a.value, named):
                    yield a.lineno, ast.unparse(a)


def _aliased(value, named) -> bool:
    """``x = TABLE``, ``x = TABLE if c else y`` or ``x = y or TABLE``: the table under another name."""
    if isinstance(value, ast.IfExp):
        return _aliased(value.body, named) or _aliased(value.orelse, named)
    if isinstance(value, ast.BoolOp):
        return any(_aliased(v, named) for v in value.values)
    return named(value)


def _table(tree, name: str) -> bool:
    """Whether ``name`` is bound to a plain dict/list/set table (a constant may be one; a lock or an object may not)."""
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(ast.unparse(t) == name for t in targets):
                v = node.value
                return isinstance(v, LITERALS) or (isinstance(v, ast.Call) and _callee(v) in {"dict", "list", "set"})
    return False


def findings(root: Path = ROOT, packages=PACKAGES, allowed=frozenset(ALLOWED)) -> list:
    """Every module-level mutable binding, ``global`` statement and constant-table write not allowed."""
    files = sorted(p for pkg in packages for p in (root / pkg).rglob("*.py"))
    trees = {p.relative_to(root).as_posix(): ast.parse(p.read_text(encoding="utf-8")) for p in files}
    out, constants = [], set()
    for rel, tree in trees.items():
        own = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        for line, name, where in _bindings(tree.body, "module", own):
            if where == "module" and _is_constant_name(name) and _table(tree, name):
                constants.add(name)
            elif (rel, name) not in allowed:
                out.append(f"{rel}:{line}: {where}-level mutable {name}")
        for n in ast.walk(tree):
            if isinstance(n, ast.Global):
                out.append(f"{rel}:{n.lineno}: global {', '.join(n.names)}")
    for rel, tree in trees.items():
        out += [f"{rel}:{line}: writes the constant table: {text}" for line, text in _writes(tree, constants)]
    return sorted(out, key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


def test_no_module_level_mutable_state_in_app_or_gendef():
    assert findings() == []


def test_the_allow_list_names_only_what_exists():
    """An allowed entry whose binding went away must leave the list, so the list cannot hide new state."""
    for rel, name in ALLOWED:
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Assign) and any(ast.unparse(t) == name for t in n.targets) for n in tree.body), (rel, name)


def test_a_planted_global_is_found(tmp_path):
    pkg = tmp_path / "gendef"
    pkg.mkdir()
    (pkg / "clean.py").write_text('__all__ = ["f"]\nLIMITS = {"a": 1}\nRATE = 2\n\n\ndef f():\n    return LIMITS["a"]\n')
    assert findings(tmp_path, ("gendef",)) == []
    (pkg / "planted.py").write_text(
        "import threading\n"
        "from .clean import LIMITS\n"
        "_CACHED = {}\n"
        "_model = None\n"
        "_lock = threading.Lock()\n\n\n"
        "class Holder:\n"
        "    kinds: list = []\n\n\n"
        "_HOLDER = Holder()\n\n\n"
        "def lazy(cache=None):\n"
        "    global _model\n"
        "    _model = object()\n"
        "    _CACHED['k'] = _model\n"
        "    LIMITS.update(b=2)\n"
        "    cache = _CACHED if cache is None else cache\n"
    )
    found = findings(tmp_path, ("gendef",))
    assert found == [
        "gendef/planted.py:5: module-level mutable _lock",
        "gendef/planted.py:9: Holder-level mutable kinds",
        "gendef/planted.py:12: module-level mutable _HOLDER",
        "gendef/planted.py:16: global _model",
        "gendef/planted.py:18: writes the constant table: _CACHED['k']",
        "gendef/planted.py:19: writes the constant table: LIMITS.update",
        "gendef/planted.py:20: writes the constant table: cache = _CACHED if cache is None else cache",
    ], found
    assert findings(tmp_path, ("gendef",), allowed={("gendef/planted.py", "_HOLDER")}) == [
        f for f in found if "_HOLDER" not in f
    ]


def test_a_slot_keeps_one_model_per_key_for_its_caller():
    from gendef.editing.slot import Slot

    built = []

    def build(tag):
        return lambda: built.append(tag) or f"model-{tag}"

    mine, theirs = Slot(), Slot()
    assert mine.get("a", build("a")) == "model-a" and mine.get("a", build("a2")) == "model-a"
    assert theirs.get("a", build("t")) == "model-t"  # another caller's slot loads its own
    assert mine.get("b", build("b")) == "model-b" and mine.key == "b"
    mine.clear()
    assert mine.value is None and mine.get("b", build("b2")) == "model-b2"
    assert built == ["a", "t", "b", "b2"]
