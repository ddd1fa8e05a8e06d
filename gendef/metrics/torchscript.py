"""The feature detectors that StyleGAN2-ADA and StyleGAN-V publish, as TorchScript files.

FID in StyleGAN2-ADA / StyleGAN-V uses NVIDIA's TorchScript port of TensorFlow's
``inception-2015-12-05`` graph; FVD in StyleGAN-V uses a TorchScript port of the
tf.hub I3D (Kinetics-400). Numbers that can stand beside a paper's table need
exactly these networks, called exactly as those repositories call them:

- Inception: ``net(images_uint8 [N, 3, H, W], return_features=True)`` -> [N, 2048]
- I3D:       ``net(videos_uint8 [N, 3, T, H, W], rescale=True, resize=True, return_features=True)`` -> [N, 400]

Both take pixel values in [0, 255] (uint8) and resize internally. A detector
source is a local file, an ``http(s)://`` / ``file://`` URL (downloaded once into
the cache, written to a temp file and renamed), or a Hugging Face hub file
``owner/repo/path.pt``. Nothing is fetched at import or in tests.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

import torch
from torch import nn

from .cache import MetricsCache
from .weights import cache_dir
from ..errors import MetricsError

__all__ = ["DetectorSpec", "INCEPTION", "I3D", "TorchScriptDetector", "fetch_detector", "load_detector", "to_uint8"]

MAX_DETECTOR_BYTES = 1 << 30  # the real files are ~95 MB (Inception) and ~50 MB (I3D)


@dataclass(frozen=True)
class DetectorSpec:
    """Where a published detector lives and how its reference code calls it."""

    name: str
    url: str
    filename: str
    kwargs: Dict[str, bool] = field(default_factory=dict)
    dim: int = 0
    temporal: bool = False  # True: input [N, 3, T, H, W]; False: [N, 3, H, W]
    env: str = ""  # environment variable that overrides the source


INCEPTION = DetectorSpec(
    name="inception-2015-12-05",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    filename="inception-2015-12-05.pt",
    kwargs={"return_features": True},
    dim=2048,
    temporal=False,
    env="GENDEF_INCEPTION_TORCHSCRIPT",
)
I3D = DetectorSpec(
    name="i3d_torchscript",
    url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
    filename="i3d_torchscript.pt",
    kwargs={"rescale": True, "resize": True, "return_features": True},
    dim=400,
    temporal=True,
    env="GENDEF_I3D_TORCHSCRIPT",
)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 exactly as StyleGAN2-ADA / StyleGAN-V quantise
    fakes before their detectors (``x * 127.5 + 128``, clamped, truncated)."""
    return (x.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def _download(url: str, dst: Path) -> None:
    """urllib download into ``dst``: temp file in the same folder, renamed when complete."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=str(dst.parent))
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            size = int(resp.headers.get("Content-Length") or 0)
            if size > MAX_DETECTOR_BYTES:
                raise MetricsError(f"{url}: {size} bytes is larger than any detector ({MAX_DETECTOR_BYTES})")
            shutil.copyfileobj(resp, out, length=1 << 20)
            if out.tell() > MAX_DETECTOR_BYTES:
                raise MetricsError(f"{url}: more than {MAX_DETECTOR_BYTES} bytes; not a detector")
        os.replace(tmp, dst)
    except MetricsError:
        raise
    except Exception as e:
        raise MetricsError(f"cannot download detector {url}: {type(e).__name__}: {e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "file://"))


def fetch_detector(spec: DetectorSpec, source: Optional[str] = None) -> Path:
    """Local path of the detector file: ``source``, else ``$spec.env``, else the official URL.

    URLs are cached under ``<cache>/metrics/detectors/<url hash>-<filename>``: fetched on first use only.
    """
    source = str(source or (os.environ.get(spec.env) if spec.env else None) or spec.url)
    local = Path(os.path.expanduser(source))
    if local.is_file():
        return local
    if _is_url(source):
        tag = hashlib.sha1(source.encode()).hexdigest()[:12]  # another URL never reuses this file
        dst = cache_dir() / "detectors" / f"{tag}-{spec.filename}"
        if not dst.is_file():
            _download(source, dst)
        return dst
    parts = source.strip("/").split("/")
    if len(parts) < 3 or source.startswith((".", "/", "~")) or local.exists():
        raise MetricsError(f"{spec.name} detector {source!r}: not a file, URL or hub file owner/repo/{spec.filename}")
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download("/".join(parts[:2]), "/".join(parts[2:]), cache_dir=str(cache_dir() / "hub")))
    except Exception as e:
        raise MetricsError(f"cannot fetch {spec.name} detector {source} from the hub: {type(e).__name__}: {e}") from None


class TorchScriptDetector(nn.Module):
    """A published TorchScript detector, called with its reference keyword arguments.

    ``forward`` takes uint8 pixels (images [N, 3, H, W] or videos [N, 3, T, H, W]) and
    returns float64 features [N, dim] on the CPU, ready for Fréchet statistics.
    """

    def __init__(self, net: torch.jit.ScriptModule, spec: DetectorSpec):
        super().__init__()
        self.net = net
        self.spec = spec

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        want = 5 if self.spec.temporal else 4
        if pixels.dtype != torch.uint8 or pixels.ndim != want or pixels.shape[1] != 3:
            layout = "[N, 3, T, H, W]" if self.spec.temporal else "[N, 3, H, W]"
            raise MetricsError(f"{self.spec.name} expects uint8 {layout}, got {pixels.dtype} {tuple(pixels.shape)}")
        feats = self.net(pixels, **self.spec.kwargs)
        if feats.ndim != 2 or feats.shape[0] != pixels.shape[0]:
            raise MetricsError(f"{self.spec.name} returned features of shape {tuple(feats.shape)}, expected [N, D]")
        return feats.double().cpu()


def load_detector(spec: DetectorSpec, source: Union[str, os.PathLike, None] = None, device="cpu",
                  cache: Optional[MetricsCache] = None) -> TorchScriptDetector:
    """Fetch (first use only: files are kept on disk) and ``torch.jit.load`` a detector; kept in
    ``cache`` per file and device when one is given, else loaded afresh."""
    path = fetch_detector(spec, None if source is None else str(source))
    key = ("torchscript", spec.name, str(path), str(device))
    if cache is not None and key in cache.detectors:
        return cache.detectors[key]
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format these files are in
            warnings.simplefilter("ignore", FutureWarning)
            net = torch.jit.load(str(path), map_location=device).eval()
    except Exception as e:
        raise MetricsError(f"{path}: not a TorchScript {spec.name} file ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    detector = TorchScriptDetector(net, spec)
    if cache is not None:
        cache.detectors[key] = detector
    return detector
