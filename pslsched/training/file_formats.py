"""File formats the dataset loaders read: IDX (MNIST), CIFAR-10 binary and python batches, and a safe unpickler.

Every reader takes a path and returns numpy arrays, or raises ``InputError("--data-dir", ...)`` naming the file and
what was expected. Nothing is allocated past what the file really holds: a file (or a ``.gz`` file's decompressed
content, read in a stream) of more than ``MAX_DATA_FILE_BYTES`` is refused, IDX dims are multiplied in Python
integers and checked against the file's size before the data is read, and a pickled array must be backed by bytes
present in the file. CIFAR-10's python batches are pickles: ``ArrayUnpickler`` rebuilds plain containers and numpy
arrays only, so nothing in the file is executed.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import pickletools
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_DATA_FILE_BYTES, MAX_PICKLE_OPS, human_bytes

IDX_MAGIC = {2051: 3, 2049: 1}  # images: 3 dims (N, rows, cols); labels: 1 dim (N,)
_CHUNK = 1 << 20


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def _unreadable(path: Path, what: str, exc: BaseException) -> InputError:
    return InputError("--data-dir", f"cannot read {str(path)!r} ({what}): {exc}")


def _too_large(path: Path, size: str) -> InputError:
    return InputError(
        "--data-dir",
        f"{str(path)!r} {size}; the limit for one data file is {human_bytes(MAX_DATA_FILE_BYTES)} "
        "(docs/training.md, Data)",
    )


def read_bytes(path: Path, what: str, limit: int | None = None) -> bytes:
    """The file's content, gunzipped in a stream when it ends in ``.gz``; ``InputError`` naming the file when it
    cannot be read or holds more than ``limit`` bytes (default ``MAX_DATA_FILE_BYTES``)."""
    limit = MAX_DATA_FILE_BYTES if limit is None else limit
    try:
        if path.suffix != ".gz":
            size = path.stat().st_size
            if size > limit:
                raise _too_large(path, f"holds {human_bytes(size)}")
            return path.read_bytes()
        parts: list[bytes] = []
        total = 0
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise _too_large(path, f"decompresses to more than {human_bytes(limit)}")
                parts.append(chunk)
        return b"".join(parts)
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, what, exc) from None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes: big-endian int32 magic (2051 images / 2049 labels), dims, then the data.

    The dims' product (Python integers, no overflow) is checked against ``MAX_DATA_FILE_BYTES`` and the file's
    real size before the data is read; a ``.gz`` file is decompressed only as far as the header says, plus one byte.
    """
    ndim = IDX_MAGIC[magic]
    kind = "images" if magic == 2051 else "labels"
    expected = f"an IDX {kind} file (big-endian magic number {magic}, {ndim} dims, unsigned bytes)"
    header = 4 + 4 * ndim
    try:
        with _open(path) as fh:
            head = fh.read(header)
            if len(head) < header:
                raise InputError(
                    "--data-dir", f"{str(path)!r} is too short ({len(head)} bytes) for {expected}"
                )
            found = int.from_bytes(head[:4], "big")
            if found != magic:
                raise InputError(
                    "--data-dir",
                    f"{str(path)!r} has magic number {found}, expected {expected}; is it the right file?",
                )
            dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
            size = math.prod(dims)
            if header + size > MAX_DATA_FILE_BYTES:
                raise _too_large(path, f"declares dims {dims} ({size:,} data bytes)")
            if path.suffix != ".gz" and path.stat().st_size != header + size:
                data_bytes = path.stat().st_size - header
                raise _size_mismatch(path, dims, size, data_bytes, expected)
            data = fh.read(size + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, f"expected {expected}", exc) from None
    if len(data) != size:
        present = f"more than {size}" if len(data) > size else len(data)
        raise _size_mismatch(path, dims, size, present, expected)
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _size_mismatch(path: Path, dims: list[int], size: int, present: object, expected: str) -> InputError:
    return InputError(
        "--data-dir",
        f"{str(path)!r}: header says dims {dims} ({size} data bytes) but the file has {present} data bytes; "
        f"expected {expected}",
    )


def find_file(folders: list[Path], name: str) -> Path | None:
    """The first of ``folder/name`` or ``folder/name.gz`` that exists, over ``folders`` in order."""
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


# ---------------------------------------------------------------------------------------------------- CIFAR-10

CIFAR_PIXELS = 3 * 32 * 32  # one 32x32 colour image: 1,024 red, 1,024 green, 1,024 blue bytes


def _latin1_encode(text: object, encoding: str = "utf-8") -> bytes:
    """What a protocol-2 pickle of ``bytes`` calls (``_codecs.encode(str, "latin1")``), and nothing else."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in (
        "latin1",
        "latin-1",
        "iso-8859-1",
    ):
        raise pickle.UnpicklingError(f"_codecs.encode is only allowed on a str with latin1, got {encoding!r}")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = multiarray._reconstruct
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{module}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


def _declared_bytes(shape: Any, dtype: Any) -> int:
    """The bytes an array of ``shape`` and ``dtype`` holds, multiplied in Python integers (no overflow)."""
    dims = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    if not all(isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise pickle.UnpicklingError(f"an array's shape must be whole numbers >= 0, got {shape!r}")
    return math.prod(int(d) for d in dims) * np.dtype(dtype).itemsize


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: any other global (functions, classes) is refused.

    An array may declare no more bytes than ``budget`` (the size of the file it comes from), and one built on a
    buffer no more than the buffer holds: a small file cannot declare a large array (``np.ndarray(shape, "u1",
    b"\\0", 0, (0, 0))``, a view of one byte with a huge shape, is refused before anything is allocated).
    """

    _allowed = _numpy_globals()

    def __init__(self, file: IO[bytes], *, budget: int, **kwargs: Any):
        super().__init__(file, **kwargs)
        self.budget = int(budget)
        self.ndarray = (
            self._ndarray
        )  # what ``numpy.ndarray`` names in this file (a constructor and a subtype)

    def _check(self, shape: Any, dtype: Any) -> int:
        need = _declared_bytes(shape, dtype)
        if need > self.budget:
            raise pickle.UnpicklingError(
                f"an array of shape {tuple(np.atleast_1d(shape).tolist())} declares {need:,} bytes "
                f"but the file holds only {self.budget:,}"
            )
        return need

    def _ndarray(self, shape: Any, dtype: Any = float, buffer: Any = None, offset: int = 0, *rest: Any):
        need = self._check(shape, dtype)
        if buffer is not None:
            have = memoryview(buffer).nbytes - int(offset)
            if need > have:
                raise pickle.UnpicklingError(
                    f"an array of {need:,} bytes is declared on a buffer of {max(have, 0):,} bytes"
                )
        return np.ndarray(shape, dtype, buffer, offset, *rest)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not self.ndarray and subtype is not np.ndarray:
            raise pickle.UnpicklingError(f"only numpy.ndarray may be rebuilt, got {subtype!r}")
        self._check(shape, dtype)
        return self._allowed[("numpy.core.multiarray", "_reconstruct")](np.ndarray, shape, dtype)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "ndarray"):
            return self.ndarray
        if name == "_reconstruct" and (module, name) in self._allowed:
            return self._reconstruct
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _check_op_count(raw: bytes, limit: int = MAX_PICKLE_OPS) -> None:
    """Refuse a pickle of more than ``limit`` opcodes before building anything: each can add an object (a list of
    a billion small ints fits in a file of a few GB and takes tens of GB), while a real batch has ~40,000."""
    for count, _ in enumerate(pickletools.genops(raw), start=1):
        if count > limit:
            raise pickle.UnpicklingError(
                f"more than {limit:,} pickle operations (a CIFAR-10 batch has ~40,000); the limit bounds the "
                "objects it may build"
            )


def read_cifar_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python batch: a pickled dict {b"data": uint8 (N, 3072), b"labels": [N ints]}, safely."""
    expected = 'a CIFAR-10 python batch (a pickled dict with b"data": uint8 N x 3072 and b"labels": N ints)'
    raw = read_bytes(path, f"expected {expected}")
    # untrusted bytes: any failure (refused global, an array larger than the file, truncation) is bad input
    try:
        _check_op_count(raw)
        obj = ArrayUnpickler(io.BytesIO(raw), budget=len(raw), encoding="bytes").load()
    except Exception as exc:
        raise InputError(
            "--data-dir", f"{str(path)!r} is not {expected}: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(obj, dict):
        raise InputError("--data-dir", f"{str(path)!r} holds a {type(obj).__name__}, expected {expected}")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != CIFAR_PIXELS
    ):
        got = f"{data.dtype} array {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise InputError("--data-dir", f'{str(path)!r}: b"data" is {got}, expected {expected}')
    declared = (
        math.prod(data.shape) * data.itemsize
    )  # a view larger than the file: refused when built, and here
    if declared > len(raw):
        raise InputError(
            "--data-dir",
            f'{str(path)!r}: b"data" declares {declared:,} bytes but the file holds {len(raw):,}',
        )
    ok = isinstance(labels, list | np.ndarray) and len(labels) == len(data)
    if ok:
        labels = np.asarray(labels)
        ok = labels.ndim == 1 and labels.dtype.kind in "iu"
    if not ok:
        raise InputError(
            "--data-dir", f'{str(path)!r}: b"labels" is not {len(data)} ints; expected {expected}'
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 binary batch: records of 1 label byte followed by 3072 pixel bytes (R, G, B planes of 32x32)."""
    raw = read_bytes(path, "a CIFAR-10 binary batch")
    record = 1 + CIFAR_PIXELS
    if len(raw) == 0 or len(raw) % record:
        raise InputError(
            "--data-dir",
            f"{str(path)!r} has {len(raw)} bytes, expected a CIFAR-10 binary batch: a whole number of "
            f"{record}-byte records (1 label byte + 3072 pixel bytes)",
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


CIFAR_BINARY_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
CIFAR_PYTHON_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR_EXPECTS = (
    "the CIFAR-10 binary version (data_batch_1.bin .. data_batch_5.bin, test_batch.bin) or python version "
    "(data_batch_1 .. data_batch_5, test_batch), directly or in cifar-10-batches-bin/ or cifar-10-batches-py/"
)


def find_cifar_batches(root: Path) -> tuple[Path, list[str], Callable[[Path], tuple[np.ndarray, np.ndarray]]]:
    """The folder under ``root`` holding a complete set of CIFAR-10 batches, their names (5 training batches, then
    the test batch) and the reader of their version; ``InputError`` naming the first missing file otherwise."""
    best: tuple[int, Path, list[str]] | None = None
    for folder in (root, root / "cifar-10-batches-bin", root / "cifar-10-batches-py"):
        for names in (CIFAR_BINARY_FILES, CIFAR_PYTHON_FILES):
            present = [n for n in names if (folder / n).is_file()]
            if len(present) == len(names):
                binary = names is CIFAR_BINARY_FILES
                return folder, names, read_cifar_binary_batch if binary else read_cifar_python_batch
            if present and (best is None or len(present) > best[0]):
                best = (len(present), folder, names)
    if best is not None:
        _, folder, names = best
        missing = [n for n in names if not (folder / n).is_file()]
        raise InputError(
            "--data-dir",
            f"{str(folder / missing[0])!r} is missing; the cifar10 dataset expects {CIFAR_EXPECTS}",
        )
    raise InputError(
        "--data-dir", f"no CIFAR-10 batches in {str(root)!r}; the cifar10 dataset expects {CIFAR_EXPECTS}"
    )
