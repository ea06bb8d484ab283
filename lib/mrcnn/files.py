"""Files written whole or not at all: the one atomic-write helper of the project.

Every file a run leaves (checkpoints, ``config.json``, ``run.json``, reports,
detections, exported COCO files) is written to a temporary file beside its target
and moved into place with ``os.replace`` only when writing succeeded, so a crash or a
``kill -9`` never leaves a truncated file under the final name. The temporary file
is ``<directory>/<basename>.<random>.tmp``, created with the permissions the umask
gives any new file (``tempfile.mkstemp`` would make it 0600 and ``os.replace`` keep
that, so teammates could not read a shared run); :func:`stale_temporaries` finds what
an interrupted write left.
"""

import contextlib
import glob
import json
import os
import secrets


def temporary_name(filepath):
    """A new, unused temporary path beside ``filepath``, created empty (mode 0666
    minus the umask): ``<directory>/<basename>.<random>.tmp``."""
    directory = os.path.dirname(os.path.abspath(filepath))
    prefix = os.path.basename(filepath) + "."
    while True:
        tmp = os.path.join(directory, f"{prefix}{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def stale_temporaries(directory, basename_glob):
    """Temporary files :func:`temporary_name` made for targets matching
    ``basename_glob`` (e.g. ``"siamese_mrcnn_*.h5"``) in ``directory``: what a write
    killed before its ``os.replace`` leaves behind. Sorted paths."""
    return sorted(glob.glob(os.path.join(glob.escape(os.fspath(directory)),
                                         f"{basename_glob}.*.tmp")))


@contextlib.contextmanager
def atomic_path(filepath, make_dirs=False):
    """Yield a temporary path to write; it becomes ``filepath`` when the block ends
    without an error. On any error (KeyboardInterrupt included) the temporary file
    is removed and nothing at ``filepath`` changes.

    ``make_dirs``: create the target's directory if needed; otherwise a missing
    directory is a FileNotFoundError naming it.
    """
    filepath = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(filepath))
    if make_dirs:
        os.makedirs(directory, exist_ok=True)
    elif not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {filepath}: directory {directory} does not "
                                f"exist")
    tmp = temporary_name(filepath)
    try:
        yield tmp
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(filepath, mode="w", encoding="utf-8", make_dirs=False):
    """``open()`` for writing whose file appears at ``filepath`` only once the block
    ends without an error (see :func:`atomic_path`). ``mode`` "w" or "wb"."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a new file: mode 'w' or 'wb', got {mode!r}")
    with atomic_path(filepath, make_dirs=make_dirs) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f


def write_json(filepath, data, indent=2, sort_keys=True, make_dirs=False):
    """Write ``data`` as JSON to ``filepath`` atomically."""
    with atomic_open(filepath, make_dirs=make_dirs) as f:
        json.dump(data, f, indent=indent, sort_keys=sort_keys)
