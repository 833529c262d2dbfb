"""A run's state directory: created locked, removed by name only, found stale once no one holds it."""

import os
import stat

import pytest

from socker.host import statedir
from socker.errors import SockerError

NAME = "socker-1000-0123456789ab"
pytestmark = pytest.mark.root  # root-owned directories, chown


def test_create_makes_a_root_owned_directory_that_is_locked(state_dir):
    fd = statedir.create(NAME)
    try:
        for path in (state_dir, state_dir / NAME):
            st = os.lstat(path)
            assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == statedir.MODE and (st.st_uid, st.st_gid) == (0, 0)
        assert os.listdir(state_dir) == [NAME]  # no unnamed directory is left
        assert statedir.stale() == {}  # held: not stale
    finally:
        os.close(fd)
    stale = statedir.stale()
    assert list(stale) == [NAME]
    os.close(stale[NAME])


def test_the_lock_outlives_the_process_that_made_it_only_in_its_children(state_dir):
    """What the guardian relies on: a forked child keeps the lock after its parent has gone."""
    fd = statedir.create(NAME)
    release, go = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(go)
        os.read(release, 1)  # until the parent has looked
        os._exit(0)
    os.close(release)
    os.close(fd)
    try:
        assert statedir.stale() == {}
    finally:
        os.close(go)  # the child reads end-of-file and goes
        os.waitpid(child, 0)
    stale = statedir.stale()
    assert list(stale) == [NAME]
    os.close(stale[NAME])


def test_create_refuses_an_existing_run(state_dir):
    os.close(statedir.create(NAME))
    with pytest.raises(SockerError, match="cannot create .*: File exists"):
        statedir.create(NAME)


@pytest.mark.parametrize("spoil", [
    lambda d: (d.mkdir(), os.chmod(d, 0o777)),
    lambda d: (d.mkdir(), os.chmod(d, 0o775)),
    lambda d: (d.mkdir(), os.chown(d, 65534, 0)),
    lambda d: d.symlink_to(d.parent),
    lambda d: d.write_text(""),
], ids=["world-writable", "group-writable", "not-root-owned", "symlink", "file"])
def test_create_refuses_an_untrustworthy_state_directory(state_dir, spoil):
    spoil(state_dir)
    with pytest.raises(SockerError, match="not a root-owned directory writable only by root"):
        statedir.create(NAME)
    assert not (state_dir.parent / NAME).exists()


def test_remove_takes_away_exactly_that_run_and_never_recurses(state_dir):
    for name in (NAME, "socker-1000-other"):
        os.close(statedir.create(name))
        (state_dir / name / "passwd").write_text("x")
    (state_dir / NAME / "mounts" / "0").mkdir(parents=True)  # a staged point still there
    statedir.remove(NAME)
    assert sorted(os.listdir(state_dir / NAME)) == ["mounts"]
    (state_dir / NAME / "mounts" / "0").rmdir()
    statedir.remove(NAME)
    statedir.remove(NAME)  # missing is fine
    assert sorted(os.listdir(state_dir)) == ["socker-1000-other"]


def test_left_behind_names_mounts_below_the_directory_and_the_directory(state_dir, tmp_path):
    os.close(statedir.create(NAME))
    directory = state_dir / NAME
    info = tmp_path / "mountinfo"
    info.write_text(f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                    f"40 22 8:1 /home/alice {directory}/mounts/0 rw - ext4 /dev/sda1 rw\n"
                    f"41 22 8:1 /home/bob {directory}-other/mounts/0 rw - ext4 /dev/sda1 rw\n")
    assert statedir.left_behind(NAME, mountinfo=str(info)) == [f"{directory}/mounts/0", str(directory)]
    statedir.remove(NAME)
    info.write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
    assert statedir.left_behind(NAME, mountinfo=str(info)) == []


def test_stale_finds_unnamed_directories_of_a_run_killed_while_creating(state_dir):
    os.close(statedir.create(NAME))
    (state_dir / f"{statedir.UNNAMED}socker-1000-killed").mkdir()
    (state_dir / "unrelated").mkdir()
    stale = statedir.stale()
    assert sorted(stale) == [f"{statedir.UNNAMED}socker-1000-killed", NAME]
    for fd in stale.values():
        os.close(fd)
