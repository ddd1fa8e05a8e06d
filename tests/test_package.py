"""The installable package: metadata, extras, console script, and a library that never pulls the studio."""
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _wheel_metadata(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("gendef-*.whl")
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        entry = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
        return Parser().parsestr(z.read(meta).decode()), z.read(entry).decode(), z.namelist()


def test_wheel_core_has_no_studio_dependencies(tmp_path):
    meta, entry_points, names = _wheel_metadata(tmp_path)
    requires = meta.get_all("Requires-Dist")
    core = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("torch") for r in core)
    assert not any(r.startswith(("gradio", "diffusers", "accelerate")) for r in core), core
    extras = set(meta.get_all("Provides-Extra"))
    assert {"app", "train", "test"} <= extras
    assert any(r.startswith("gradio") and 'extra == "app"' in r for r in requires)
    assert "gendef = gendef.cli:main" in entry_points
    assert "gendef/errors.py" in names and "train/configs/tiny.yaml" in names


def test_library_and_cli_import_without_gradio():
    code = ("import sys, gendef, gendef.cli, gendef.video, gendef.generator.model, gendef.decomposition\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'app', 'accelerate'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert r.returncode == 0, r.stderr


def test_console_script_runs():
    exe = Path(sys.executable).with_name("gendef")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gendef"]
    r = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120, cwd="/")
    assert r.returncode == 0 and "decompose" in r.stdout


def test_every_user_error_is_one_family():
    from gendef import errors
    from gendef.errors import CanonicalVideoError

    for cls in (errors.UsageError, errors.DatasetError, CanonicalVideoError, errors.StylizeUnavailable, errors.ConfigError):
        assert issubclass(cls, errors.GenDeFError)
    assert errors.one_line(ValueError("a\n  b")) == "a b"
