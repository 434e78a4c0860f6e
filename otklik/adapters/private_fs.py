"""Files of an install are the seller's and the buyers' data: folders 0700, files 0600, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and make it 0700; an existing folder is tightened too."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """Tighten an existing file to 0600 (a no-op for a missing one)."""
    if path.exists():
        _chmod(path, FILE_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new or truncated file created 0600 (the mode is set before a byte is written)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
    finally:
        if fd != -1:
            os.close(fd)


def private_sqlite(url: str) -> None:
    """Create a SQLite database file 0600 before SQLite opens it; SQLite gives its `-wal`, `-shm` and
    `-journal` files the database file's mode. Existing files are tightened. Other databases: nothing."""
    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return
    db = Path(parsed.database)
    if not db.parent.exists():
        return
    if not db.exists():
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for path in (db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        private_file(path)


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except PermissionError:  # not ours (e.g. a mounted volume): leave it, the owner decides
        pass
