"""Files a run writes: atomic replacement under temp names unique to the process, checksums, one writer per folder.

``write_atomically`` writes a temporary file beside the target (named with this process's id and a random part, so
two processes never share one) and renames it into place: a reader sees the old file or the whole new one.
``folder_lock`` holds an exclusive lock on an output folder (``fcntl.flock`` on ``DIR/.sched.lock``) while a run
writes there; a second writer is refused with one ``InputError`` naming the folder and the holder. The lock is
the kernel's, so a killed process never leaves a stale one behind.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pslsched.base.errors import InputError

LOCK_FILE = ".sched.lock"


def temp_name(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process (or call) uses: ``.NAME.PID.RANDOM.tmpSUFFIX``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` a uniquely named temporary file beside ``path``, then move it into place (readers never see half
    a file; a failed write leaves no temporary file behind)."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """``text`` into ``path``, atomically (see ``write_atomically``)."""
    write_atomically(path, lambda p: Path(p).write_text(text))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, read in chunks (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def folder_lock(folder: Path, field: str = "--out") -> Iterator[None]:
    """Hold the exclusive writer's lock on ``folder`` (created if missing); another holder: ``InputError``.

    A run that locks ``DIR`` may lock ``DIR/sub`` too. A folder this call created and nothing but the lock was
    written to (the run was refused before writing) is removed again: a refused run leaves nothing behind.
    """
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InputError(field, f"cannot write to {str(folder)!r}: {exc.strerror or exc}") from None
    try:
        if not _try_lock(fd):
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise InputError(
                field,
                f"{str(folder)!r} is in use by another sched run ({holder}); wait for it to end or choose "
                "another folder",
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
        if created:
            _remove_if_only_the_lock(folder)


def _remove_if_only_the_lock(folder: Path) -> None:
    try:
        if [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            (folder / LOCK_FILE).unlink()
            folder.rmdir()
    except OSError:
        pass


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one writer per folder is then the user's job
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
