"""socker's record of the images it pulled, for `socker prune`: one file per reference, root's alone.

Under /var/lib, so that it outlives a reboot as the images do. Written whole
under a temporary name and renamed, so that a reader never sees half a record.
Every function needs root.
"""

import errno
import json
import os
import time

from ..errors import SockerError
from ..host import securefile
from ..value import Value

DIRECTORY = "/var/lib/socker/pulled"
_MAX_BYTES = 65536


class Pull(Value):
    reference: str  # canonical, as it was pulled
    digest: str | None  # of the manifest the engine pulled; None while it pulls, or if it died pulling
    image_id: str | None
    user: str  # whose socker caused the pull
    time: int  # seconds since the epoch
    filename: str


def write(reference, digest, image_id, user):
    """Record the pull of `reference` (an imageref.Reference) by `user`'s socker: before the engine
    is asked for it (digest and image_id None), and again once it is there. Leaves nothing
    half-written when it fails."""
    try:
        securefile.root_directory(os.path.dirname(DIRECTORY), 0o755)
        securefile.root_directory(DIRECTORY, 0o700)
        directory = os.open(DIRECTORY, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise SockerError(f"cannot record the pull in {DIRECTORY}: {e.strerror}") from e
    filename = reference.file_name
    data = json.dumps({"reference": str(reference), "digest": digest, "image_id": image_id, "user": user,
                       "time": int(time.time())}).encode()
    temporary = f".{filename}.{os.getpid()}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=directory)
        try:
            if os.write(fd, data) != len(data):  # far below a page: whole unless a limit stops it
                raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        finally:
            os.close(fd)
        os.rename(temporary, filename, src_dir_fd=directory, dst_dir_fd=directory)
    except OSError as e:
        try:
            os.unlink(temporary, dir_fd=directory)
        except FileNotFoundError:
            pass
        raise SockerError(f"cannot record the pull in {DIRECTORY}: {e.strerror}") from e
    finally:
        os.close(directory)


def every():
    """Every recorded pull; a record that cannot be read is skipped."""
    try:
        names = sorted(os.listdir(DIRECTORY))
    except FileNotFoundError:
        return []
    found = []
    for filename in names:
        if filename.startswith("."):
            continue
        try:
            fd = os.open(os.path.join(DIRECTORY, filename), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fields = json.loads(os.read(fd, _MAX_BYTES))
            finally:
                os.close(fd)
            found.append(Pull(fields["reference"], fields["digest"], fields["image_id"], fields["user"],
                              fields["time"], filename))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def forget(pull):
    try:
        os.unlink(os.path.join(DIRECTORY, pull.filename))
    except FileNotFoundError:
        pass


def forget_reference(reference):
    """Forget the record of `reference`: its pull failed, and the engine does not have it."""
    try:
        os.unlink(os.path.join(DIRECTORY, reference.file_name))
    except FileNotFoundError:
        pass


def sweep():
    """Remove the half-written records of writers that are gone (an earlier socker's); returns how many."""
    try:
        names = os.listdir(DIRECTORY)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        writer = name.rsplit(".", 1)[-1]
        if name.startswith(".") and writer.isdigit() and not os.path.exists(f"/proc/{writer}"):
            try:
                os.unlink(os.path.join(DIRECTORY, name))
                removed += 1
            except FileNotFoundError:
                pass
    return removed
