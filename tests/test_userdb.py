import os
import stat
from contextlib import contextmanager

import pytest

from helpers import IDENTITY, make_identity
from socker.host import statedir, userdb
from socker.errors import SockerError
from socker.model import Mount

NAME = "socker-1000-0123456789ab"
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
          "alice:x:1000:1000:Alice Liddell:/home/alice:/bin/sh\n")
GROUP = "root:x:0:\nnogroup:x:65534:\nalice:x:1000:\nusers:x:100:alice\nlab:x:2000:alice\n"


class FakePrivileges:
    """Counts the times root is held; the tests already run as root."""

    def __init__(self):
        self.held, self.times = False, 0

    @contextmanager
    def elevated(self):
        self.held, self.times = True, self.times + 1
        try:
            yield
        finally:
            self.held = False


def write(identity, name, privileges):
    """userdb.write into a new state directory, as runner.run calls it."""
    if not os.path.isdir(statedir.path(name)):
        os.close(statedir.create(name))
    return userdb.write(identity, name, privileges)


def test_render():
    assert userdb.render(IDENTITY) == (PASSWD, GROUP)


@pytest.mark.parametrize("changes, group", [
    ({"group_names": ()}, "root:x:0:\nnogroup:x:65534:\nalice:x:1000:\n"),  # names unknown: primary named after user
    ({"groups": (1000, 100, 100)}, "root:x:0:\nnogroup:x:65534:\nalice:x:1000:\nusers:x:100:alice\n"),
    ({"groups": (0, 65534, 3000)}, "root:x:0:\nnogroup:x:65534:\nalice:x:1000:\n"),
    ({"gid": 100, "groups": ()}, "root:x:0:\nnogroup:x:65534:\nusers:x:100:\n"),
])
def test_render_groups(changes, group):
    assert userdb.render(make_identity(**changes))[1] == group


def test_render_user_line():
    bob = make_identity(uid=5001, gid=5002, name="bob", home="/home/b/bob", gecos="")
    assert userdb.render(bob)[0].splitlines()[2] == "bob:x:5001:5002::/home/b/bob:/bin/sh"


@pytest.mark.parametrize("gecos", ["x\nroot2:x:0:0::/root:/bin/sh", "a:b"])
def test_render_gecos_cannot_add_fields_or_lines(gecos):
    lines = userdb.render(make_identity(gecos=gecos))[0].splitlines()
    assert len(lines) == 3 and lines[2].count(":") == 6


@pytest.mark.root
def test_write_creates_root_owned_files_and_returns_their_mounts(state_dir):
    privileges = FakePrivileges()
    mounts = write(IDENTITY, NAME, privileges)
    directory = state_dir / NAME
    assert mounts == (Mount(str(directory / "passwd"), "/etc/passwd", True),
                      Mount(str(directory / "group"), "/etc/group", True))
    assert (privileges.times, privileges.held) == (1, False)
    for filename, text in (("passwd", PASSWD), ("group", GROUP)):
        st = os.lstat(directory / filename)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644 and (st.st_uid, st.st_gid) == (0, 0)
        assert (directory / filename).read_text() == text


@pytest.mark.root
def test_write_refuses_to_write_a_second_time(state_dir):
    write(IDENTITY, NAME, FakePrivileges())
    with pytest.raises(SockerError, match="cannot write .*: File exists"):
        write(make_identity(name="mallory", gecos="evil"), NAME, FakePrivileges())
    assert (state_dir / NAME / "passwd").read_text() == PASSWD


def test_write_never_follows_or_reuses_a_file(tmp_path):
    directory, victim = tmp_path / "d", tmp_path / "victim"
    directory.mkdir()
    victim.write_text("untouched")
    (directory / "passwd").symlink_to(victim)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            userdb._write_new(fd, "passwd", "evil")
    finally:
        os.close(fd)
    assert victim.read_text() == "untouched"
