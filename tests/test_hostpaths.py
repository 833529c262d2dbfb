import os

import pytest

from socker.host import hostpaths


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A directory tree with every kind of entry; the current directory is its `work` subdirectory."""
    root = tmp_path.resolve()
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "file.txt").write_text("x")
    os.mkfifo(root / "fifo")
    (root / "link-dir").symlink_to(root / "dir")
    (root / "link-file").symlink_to("file.txt")  # relative
    (root / "link-link").symlink_to(root / "link-dir")
    (root / "link-fifo").symlink_to(root / "fifo")
    (root / "dangling").symlink_to(root / "absent")
    (root / "loop-a").symlink_to(root / "loop-b")
    (root / "loop-b").symlink_to(root / "loop-a")
    (root / "link-up").symlink_to("..")
    (root / "work").mkdir()
    monkeypatch.chdir(root / "work")
    return root


@pytest.mark.parametrize("name, real, kind", [
    ("dir", "dir", "dir"),
    ("dir/sub", "dir/sub", "dir"),
    ("dir/../file.txt", "file.txt", "file"),
    ("file.txt", "file.txt", "file"),
    ("fifo", "fifo", "other"),
    ("link-dir", "dir", "dir"),
    ("link-dir/sub", "dir/sub", "dir"),
    ("link-file", "file.txt", "file"),
    ("link-link/sub", "dir/sub", "dir"),
    ("link-fifo", "fifo", "other"),
    ("link-dir/../file.txt", "file.txt", "file"),  # '..' is taken after the link, as the kernel does
    ("link-up", "..", "dir"),
])
def test_existing_paths_resolve_to_real_path_and_kind(tree, name, real, kind):
    path = str(tree / name)
    view = hostpaths.look([path])
    assert view.realpaths == {path: (os.path.normpath(tree / real), kind)}


@pytest.mark.parametrize("name", ["absent", "dir/absent", "dangling", "dangling/x", "loop-a", "loop-b/x",
                                  "file.txt/x", "fifo/x", "dir/sub/../../absent"])
def test_missing_paths_are_none(tree, name):
    path = str(tree / name)
    assert hostpaths.look([path]).realpaths == {path: None}


def test_unusable_strings_are_missing(tree):
    assert hostpaths.look(["/tmp\0/x"]).realpaths == {"/tmp\0/x": None}


def test_devices_are_other():
    assert hostpaths.look(["/dev/null"]).realpaths == {"/dev/null": ("/dev/null", "other")}


def test_many_paths_at_once_and_the_physical_cwd(tree, monkeypatch):
    monkeypatch.chdir(tree / "link-dir" / "sub")
    view = hostpaths.look([str(tree / "dir"), str(tree / "absent"), str(tree / "dir")])
    assert view.cwd == str(tree / "dir" / "sub")
    assert view.realpaths == {str(tree / "dir"): (str(tree / "dir"), "dir"), str(tree / "absent"): None}


def test_no_paths(tree):
    view = hostpaths.look([])
    assert (view.cwd, view.realpaths) == (str(tree / "work"), {})


def test_a_deleted_cwd_is_none(tree):
    os.rmdir(tree / "work")
    assert hostpaths.look([str(tree / "dir")]).cwd is None


def test_nothing_is_created(tree):
    before = sorted(os.listdir(tree))
    hostpaths.look([str(tree / "new"), str(tree / "new" / "deeper"), str(tree / "dangling")])
    assert sorted(os.listdir(tree)) == before


def test_writable_holds_the_directories_and_the_cwd_the_caller_may_write(tree):
    view = hostpaths.look([str(tree / "dir"), str(tree / "file.txt"), str(tree / "absent")])
    # Unit tests run as root, who may write anything: a file is never listed, nor a missing path.
    assert view.writable == {str(tree / "dir"), str(tree / "work")}
