"""MNIST and FashionMNIST through torchvision, read from ``<root>/<Name>/raw``, never written.

torchvision reads only unpacked idx files; when the root holds the official ``.gz`` files
alone, they are unpacked into a temporary folder, read, and the folder is removed.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import torch

from .root import require_files

# torchvision's dataset classes by name; torchvision is imported when data are first read (it
# pulls in torch._dynamo, seconds that `import ppl_vae` and `ppl-vae --help` should not pay)
CLASSES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def dataset_class(name: str) -> type:
    """torchvision's dataset class for ``name`` (``mnist`` or ``fashion_mnist``)."""
    from torchvision import datasets

    return getattr(datasets, CLASSES[name])


def _raw_names(cls: type) -> list[str]:
    return [Path(url).stem for url, _ in cls.resources]  # stem drops ".gz"


def load_idx(
    name: str, root: Path, download: bool = False
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Returns ``{"train": (images, labels), "test": (...)}``; images uint8 ``[N, 28, 28]``."""
    cls = dataset_class(name)
    raw = root / cls.__name__ / "raw"
    names = _raw_names(cls)
    if all((raw / n).is_file() for n in names) or download:
        return _read(cls, root, download)
    gz = [n + ".gz" for n in names]
    require_files(
        raw,
        gz,
        cls.__name__,
        how=" Offline, copy the four official idx .gz files there; with internet access, "
        "set data.options.download = true.",
    )
    with tempfile.TemporaryDirectory(prefix="ppl_vae_") as tmp:
        out = Path(tmp) / cls.__name__ / "raw"
        out.mkdir(parents=True)
        for n in names:
            with gzip.open(raw / f"{n}.gz", "rb") as src, open(out / n, "wb") as dst:
                shutil.copyfileobj(src, dst)
        return _read(cls, Path(tmp), download=False)


def _read(cls: type, root: Path, download: bool) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = cls(root=str(root), train=train, download=download)
        out[split] = (ds.data.clone(), ds.targets.clone())
    return out
