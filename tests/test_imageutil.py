"""The one uint8 <-> float converter pair (gendef.imageutil) and the one RGBA compositor."""
import re
from pathlib import Path

import numpy as np

from gendef.imageutil import composite_over, to_float01, to_uint8

ROOT = Path(__file__).resolve().parent.parent


def test_uint8_float_roundtrip_rounding_and_clipping():
    u = np.arange(256, dtype=np.uint8)
    f = to_float01(u)
    assert f.dtype == np.float32 and f[0] == 0.0 and f[255] == 1.0
    np.testing.assert_array_equal(to_uint8(f), u)  # exact round trip for every value
    assert to_uint8(u) is u  # uint8 passes through
    np.testing.assert_array_equal(to_uint8(np.array([-0.5, 0.4 / 255, 0.6 / 255, 1.7])), [0, 0, 1, 255])  # clip + round
    assert to_float01(np.array([65535], np.uint16))[0] == 1.0 and to_float01(np.array([True]))[0] == 1.0
    np.testing.assert_array_equal(to_float01(np.array([-3.0, 7.5])), [-3.0, 7.5])  # floats are data: not clipped


def test_composite_over_straight_alpha():
    base = np.full((2, 2, 3), 0.2, np.float32)
    rgba = np.zeros((2, 2, 4), np.float32)
    rgba[0, 0] = (1.0, 0.0, 0.0, 0.5)
    out = composite_over(base, rgba)
    np.testing.assert_allclose(out[0, 0], [0.6, 0.1, 0.1], atol=1e-6)
    np.testing.assert_array_equal(out[1, 1], base[1, 1])  # transparent = untouched
    np.testing.assert_allclose(composite_over(base, to_uint8(rgba)), out, atol=1 / 255)


def test_no_private_converters_left():
    """House rule: one uint8 <-> float converter. Its idioms appear only in gendef/imageutil.py."""
    idiom = re.compile(r"255(\.0)?\s*\+\s*0\.5|astype\(np\.float32\)\s*/\s*255|/\s*65535")
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for folder in ("gendef", "app", "train")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p.name != "imageutil.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if idiom.search(line)
    ]
    assert hits == []
