"""One writer per run directory: an exclusive lock file naming its owner.

``with run_lock(run_dir):`` creates ``run_dir/run.lock`` atomically (``O_EXCL``)
holding the owner's host and pid, and removes it on leaving. A second
``train`` or ``eval`` of the same directory is refused with an error naming
the holder. A lock left by a process that no longer runs on this host (a
``kill -9``, a power cut) is stale: it is replaced. The lock also checks,
before any work, that the directory can be written, and removes a directory it
created if the command fails before writing anything into it.
"""

import contextlib
import json
import os
import socket
import tempfile
from pathlib import Path

LOCK = "run.lock"


class RunLockedError(ValueError):
    """Another process holds the run directory."""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _holder(path):
    """``(host, pid)`` of the lock file's owner, or None if it cannot be read (being written, or damaged)."""
    try:
        owner = json.loads(path.read_text())
        return str(owner["host"]), int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_writable(run_dir):
    """A clear error now, before any work, if ``run_dir`` is a file or cannot be written."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir} is a file, not a directory: choose another --out")
    existing = next(p for p in (run_dir, *run_dir.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"cannot create the run directory {run_dir}: {existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ValueError(f"cannot write to {existing} ({e.strerror}): choose another --out") from None


def _created_dirs(run_dir):
    """The directories ``mkdir(parents=True)`` of ``run_dir`` creates, innermost first."""
    missing = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
    run_dir.mkdir(parents=True, exist_ok=True)
    return missing


def _acquire(path):
    host, pid = socket.gethostname(), os.getpid()
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and holder[0] == host and not _alive(holder[1]):
                path.unlink(missing_ok=True)  # stale: its owner is gone
                continue
            who = f"process {holder[1]} on host {holder[0]}" if holder else "another process"
            raise RunLockedError(
                f"{path.parent} is in use by {who} (lock file {path}); wait for it to finish, "
                f"or delete the lock file if that process is gone"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump({"host": host, "pid": pid}, f)
        return
    raise RunLockedError(f"could not take the lock {path}; another process keeps taking it")


@contextlib.contextmanager
def run_lock(run_dir, create=True):
    """Hold ``run_dir`` exclusively for the ``with`` block (see the module docstring).

    :param bool create: create ``run_dir`` if missing (``train``); ``eval`` needs it to exist.
    """
    run_dir = Path(run_dir)
    if not create and not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it does not exist")
    check_writable(run_dir)
    created = _created_dirs(run_dir) if create else []
    path = run_dir / LOCK
    try:
        _acquire(path)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        _remove_empty(created)


def _remove_empty(dirs):
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()  # only if empty: a failed command leaves no empty run directory
