"""The Larochelle & Murray (2011) statically binarized MNIST, from a packed ``.npz``.

The ``.npz`` holds ``train``, ``valid`` and ``test`` as ``np.packbits`` of the 0/1 matrices
``[N, 784]`` (along the pixels) and ``num_features`` = 784. With ``download=True`` and no
``.npz``, the three original text files ``binarized_mnist_{train,valid,test}.amat`` (one image
per line: 784 values ``0``/``1`` separated by single spaces) are fetched from ``SOURCE``, checked
against their published SHA-256, and packed into it.

References: Larochelle & Murray (2011), The Neural Autoregressive Distribution Estimator.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..core.errors import DataError
from ..storage import atomic_write
from .root import require_files

FILE = "binarized_mnist/binarized_mnist.npz"
FEATURES = 784
SOURCE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
# split: (file, rows, SHA-256). The checksums are tensorflow_datasets' own for these URLs
# (github.com/tensorflow/datasets, tensorflow_datasets/url_checksums/binarized_mnist.txt), so a
# file is accepted only if it is byte for byte the one every published result was computed on.
AMAT = {
    "train": (
        "binarized_mnist_train.amat",
        50000,
        "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    ),
    "valid": (
        "binarized_mnist_valid.amat",
        10000,
        "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    ),
    "test": (
        "binarized_mnist_test.amat",
        10000,
        "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
    ),
}
ROW_BYTES = 2 * FEATURES  # 784 digits, 783 spaces and a newline
DOWNLOAD_HINT = (
    " With internet access, set data.options.download = true (on the command line: "
    "--set data.options.download=true) to download "
    + ", ".join(name for name, _, _ in AMAT.values())
    + f" from {SOURCE} (110 MB), check their SHA-256 and pack them into it (2.3 MB)."
)


def load_larochelle(root: Path, download: bool = False) -> dict[str, torch.Tensor]:
    """Returns ``{"train", "valid", "test"}`` as float 0/1 tensors ``[N, 784]``; with
    ``download``, a missing ``.npz`` is first built by ``download_larochelle``."""
    path = root / FILE
    if download and not path.is_file():
        download_larochelle(root)
    require_files(
        path.parent,
        [path.name],
        "binarized MNIST",
        how=" It holds train/valid/test as np.packbits of the 0/1 matrices, with num_features."
        + DOWNLOAD_HINT,
    )
    with np.load(path) as z:
        d = int(z["num_features"])
        return {
            split: torch.from_numpy(np.unpackbits(z[split], axis=1, count=d).astype(np.float32))
            for split in ("train", "valid", "test")
        }


def fetch(url: str, dest: Path) -> None:
    """Downloads ``url`` into the file ``dest``."""
    # Imported here: it pulls in http and ssl, which `import ppl_vae` should not pay for.
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, length=1 << 20)


def sha256(path: Path) -> str:
    """The SHA-256 of a file, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download_larochelle(root: Path) -> Path:
    """Downloads the three ``.amat`` files, checks each against its SHA-256, and writes the
    packed ``<root>/binarized_mnist/binarized_mnist.npz``; returns its path.

    The text files go to a temporary folder beside the ``.npz`` and are removed afterwards; a
    failed download or a wrong checksum raises DataError and leaves no ``.npz`` behind."""
    path = root / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    splits = {}
    # Beside the target rather than in /tmp: 110 MB of text may not fit a small tmpfs.
    with tempfile.TemporaryDirectory(prefix=".download_", dir=path.parent) as tmp:
        for split, (name, rows, expected) in AMAT.items():
            url, dest = SOURCE + name, Path(tmp) / name
            print(f"binarized MNIST: downloading {url}", file=sys.stderr, flush=True)
            try:
                fetch(url, dest)
            except OSError as e:  # urllib's URLError and HTTPError are OSErrors
                raise DataError(
                    f"could not download {url} ({e}); nothing was written to {path.parent}. "
                    f"Check the connection and run again, or put binarized_mnist.npz there "
                    f"yourself."
                ) from e
            got = sha256(dest)
            if got != expected:
                raise DataError(
                    f"{name} downloaded from {url} could not be verified: its SHA-256 is {got}, "
                    f"not the published {expected}, so it was not used and nothing was written "
                    f"to {path.parent}. The download may be cut short or the server may serve "
                    f"another file; run again later, or put binarized_mnist.npz there yourself."
                )
            splits[split] = np.packbits(read_amat(dest, rows), axis=1)
    buf = io.BytesIO()
    np.savez_compressed(buf, **splits, num_features=np.int64(FEATURES))
    atomic_write(path, buf.getvalue())
    print(f"binarized MNIST: wrote {path}", file=sys.stderr, flush=True)
    return path


def read_amat(path: Path, rows: int) -> np.ndarray:
    """The 0/1 matrix ``[rows, 784]`` (uint8) of an ``.amat`` text file."""
    # The format is fixed (one digit then one separator per pixel), so the file is read as
    # bytes in one go instead of parsed as text: 78 MB in well under a second.
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size != rows * ROW_BYTES:
        raise DataError(
            f"{path.name} holds {raw.size} bytes, not the {rows * ROW_BYTES} of {rows} rows of "
            f"{FEATURES} space-separated 0/1 values."
        )
    raw = raw.reshape(rows, FEATURES, 2)
    digits, separators = raw[..., 0], raw[..., 1]
    expected = np.full(FEATURES, ord(" "), dtype=np.uint8)
    expected[-1] = ord("\n")
    if not (np.isin(digits, (ord("0"), ord("1"))).all() and (separators == expected).all()):
        raise DataError(f"{path.name} is not {rows} rows of {FEATURES} space-separated 0/1 values.")
    return digits - np.uint8(ord("0"))
