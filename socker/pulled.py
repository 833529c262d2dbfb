"""socker's record of the images it pulled, for `socker prune`: one file per reference, root's alone.

Under /var/lib, so that it outlives a reboot as the images do. Written whole
under a temporary name and renamed, so that a reader never sees half a record.
Every function needs root.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass

from . import securefile

DIRECTORY = "/var/lib/socker/pulled"
_MAX_BYTES = 65536


@dataclass(frozen=True)
class Pull:
    reference: str  # canonical, as it was pulled
    digest: str  # of the manifest the engine pulled
    image_id: str
    user: str  # whose socker caused the pull
    time: int  # seconds since the epoch
    filename: str


def write(reference, digest, image_id, user):
    securefile.root_directory(os.path.dirname(DIRECTORY), 0o755)
    securefile.root_directory(DIRECTORY, 0o700)
    filename = hashlib.sha256(reference.encode()).hexdigest()
    data = json.dumps({"reference": reference, "digest": digest, "image_id": image_id, "user": user,
                       "time": int(time.time())}).encode()
    directory = os.open(DIRECTORY, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        temporary = f".{filename}.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=directory)
        try:
            os.write(fd, data)  # far below a pipe's or a page's size: written whole
        finally:
            os.close(fd)
        os.rename(temporary, filename, src_dir_fd=directory, dst_dir_fd=directory)
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
