"""socker prune: what socker pulled, is no longer allowed and no container uses goes; nothing else."""

import io
import os
import urllib.parse

import pytest

from fake_engine_api import FakeEngineAPI, FakePrivileges, client
from socker import audit, config, imageref
from socker.registry import prune, pulled
from socker.engine import Engine

pytestmark = pytest.mark.root  # the records of pulls must be root's

REGISTRY = "registry.example.org:5443"
BOWTIE = f"{REGISTRY}/bio/bowtie:2.5"
DIGEST = "sha256:" + "ef" * 32
IMAGE_ID = "sha256:" + "12" * 32
PRESENT = {("GET", f"/images/{BOWTIE}/json"): (200, {"Id": IMAGE_ID}), ("GET", "/containers/json"): (200, [])}


@pytest.fixture
def audited(tmp_path, monkeypatch):
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(pulled, "DIRECTORY", str(tmp_path / "lib" / "pulled"))
    records = []
    monkeypatch.setattr(audit, "record", lambda facility, fields: records.append(fields))
    pulled.write(imageref.parse(BOWTIE), DIGEST, IMAGE_ID, "alice")
    return records


def prune_with(images, answers):
    """Prune with `images` allowed at an engine that answers `answers`; (what it said, what it removed)."""
    fake = FakeEngineAPI(answers)
    out = io.StringIO()
    site = config.from_document({"registries": [{"host": REGISTRY}], "images": list(images)})
    prune.prune(site, Engine("/x", FakePrivileges(), api=client(fake)), out)
    return out.getvalue(), [urllib.parse.unquote(path.removeprefix("/v1.41/images/"))
                            for method, path, _ in fake.requests if method == "DELETE"]


def test_what_is_no_longer_allowed_and_unused_goes_with_every_name_its_pull_gave(audited):
    said, removed = prune_with(["busybox"], PRESENT | {("DELETE", "/images/" + BOWTIE): (200, [])})
    assert removed == [BOWTIE, f"{REGISTRY}/bio/bowtie@{DIGEST}"]  # the second may be gone with the first
    assert said == f"removed {BOWTIE} (121212121212)\n"
    assert pulled.every() == []
    assert audited == [{"action": "prune", "user": "root", "image": BOWTIE, "image_id": IMAGE_ID,
                        "result": "removed"}]


@pytest.mark.parametrize("images", [[BOWTIE], [f"{REGISTRY}/bio/*"]])
def test_what_is_still_allowed_stays(audited, images):
    said, removed = prune_with(images, PRESENT)
    assert (said, removed, audited) == ("", [], [])
    assert [p.reference for p in pulled.every()] == [BOWTIE]


def test_what_a_container_uses_stays(audited):
    said, removed = prune_with([], PRESENT | {("GET", "/containers/json"): (200, [{"Id": "c1"}])})
    assert (said, removed) == (f"kept {BOWTIE}: used by 1 container(s)\n", [])
    assert [p.reference for p in pulled.every()] == [BOWTIE]


def test_an_image_in_use_by_the_time_it_is_removed_stays(audited):
    said, _ = prune_with([], PRESENT | {("DELETE", "/images/" + BOWTIE): (409, {"message": "in use"})})
    assert said == f"kept {BOWTIE}: in use\n"
    assert [p.reference for p in pulled.every()] == [BOWTIE]


@pytest.mark.parametrize("answers", [{}, {("GET", f"/images/{BOWTIE}/json"): (200, {"Id": "sha256:" + "99" * 32})}],
                         ids=["gone", "pulled-anew"])
def test_the_record_of_an_image_gone_or_pulled_anew_is_forgotten_and_the_image_left_alone(audited, answers):
    said, removed = prune_with([], answers)
    assert (said, removed, audited) == ("", [], [])
    assert pulled.every() == []


def test_a_pull_whose_puller_died_before_it_knew_the_digest_is_pruned_by_its_name(audited):
    pulled.write(imageref.parse(BOWTIE), None, None, "alice")  # recorded before the engine was asked; no more
    said, removed = prune_with(["busybox"], PRESENT | {("DELETE", "/images/" + BOWTIE): (200, [])})
    assert removed == [BOWTIE]
    assert said == f"removed {BOWTIE} (121212121212)\n"
    assert pulled.every() == []


def test_sweep_removes_half_written_records_of_writers_that_are_gone(audited):
    gone = os.fork()
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)
    directory = pulled.DIRECTORY
    for writer in (gone, os.getpid()):
        with open(os.path.join(directory, f".{'ab' * 32}.{writer}"), "w") as f:
            f.write("{")
    assert pulled.sweep() == 1
    assert sorted(os.listdir(directory)) == sorted([f".{'ab' * 32}.{os.getpid()}", *(p.filename for p in pulled.every())])
