"""Replace a directory so that a crash at any moment leaves the old or the new one at its path.

The new content is written (and fsynced) into a hidden sibling, ``.<name>.tmp-<pid>-<id>``,
then swapped with the old directory in one step by ``renameat2(RENAME_EXCHANGE)`` where the
platform has it (Linux), and the parent directory is fsynced. Elsewhere the old directory is
renamed aside to ``.<name>.old-<pid>-<id>`` first; a crash between the two renames leaves it
there, and :func:`recover` (called by the next save or load) puts it back. Leftovers of
killed writers (their process is gone) are removed by the next :func:`replace`.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "d"
>>> _ = replace(target, {"a.txt": b"1"}); _ = replace(target, {"a.txt": b"2"})
>>> (target / "a.txt").read_bytes(), sorted(p.name for p in target.parent.iterdir())
(b'2', ['d'])
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["recover", "replace"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def on_step(step: str) -> None:
    """Called with the name of each step of :func:`replace` as it completes (a test hook:
    the crash tests replace it to kill the process or raise between steps)."""


def _renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2() if os.name == "posix" else None


def exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically; ``False`` where the platform or file system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, f"cannot exchange {a} and {b}: {os.strerror(code)}")


def fsync_dir(path: Path) -> None:
    """Make the entries of ``path`` (a directory) durable, where the platform allows it."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _leftovers(target: Path) -> list[tuple[str, int | None, Path]]:
    """``(kind, pid or None, path)`` of each ``.<name>.tmp-*`` / ``.<name>.old-*`` sibling."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(tmp|old)-(?:(\d+)-)?[0-9a-f]+")
    found = []
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match:
                pid = int(match.group(2)) if match.group(2) else None
                found.append((match.group(1), pid, Path(entry.path)))
    return found


def _alive(pid: int | None) -> bool:
    if pid is None:  # written by neurocloud 0.1, which kept no pid: its writer is long gone
        return False
    if pid == os.getpid() or os.name != "posix":  # Windows' os.kill(pid, 0) is not a probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but is not ours (PermissionError), or not checkable
        return True
    return True


def recover(target: Path) -> bool:
    """If ``target`` is missing but a writer left the old directory aside, put it back."""
    if os.path.lexists(target):
        return False
    aside = [
        (path.stat().st_mtime_ns, path)
        for kind, pid, path in _leftovers(target)
        if kind == "old" and not _alive(pid)
    ]
    if not aside:
        return False
    os.rename(max(aside)[1], target)
    fsync_dir(target.parent)
    return True


def _clean(target: Path) -> None:
    for _, pid, path in _leftovers(target):
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)


def _write(folder: Path, files: Mapping[str, bytes]) -> None:
    for name, data in files.items():
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    fsync_dir(folder)


def replace(target: Path, files: Mapping[str, bytes]) -> Path:
    """Make ``target`` a directory holding exactly ``files`` (name -> bytes), crash-safely."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    _clean(target)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = parent / f".{target.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        _write(tmp, files)
        on_step("written")
        if not os.path.lexists(target):
            os.rename(tmp, target)
            on_step("renamed")
        elif exchange(tmp, target):
            on_step("exchanged")  # tmp now holds the old directory
        else:
            old = parent / f".{target.name}.old-{tag}"
            os.rename(target, old)
            on_step("moved-aside")
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            tmp = old
            on_step("renamed")
        fsync_dir(parent)
        on_step("synced")
    finally:
        if tmp.is_symlink():  # target was a link to a directory: the link is what moved
            tmp.unlink()
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
