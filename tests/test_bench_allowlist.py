"""benchmarks/allowlist.py: the benchmark reads `socker images` as socker writes it, and the
entries it adds to a config are what socker's own parser reads from it."""

from pathlib import Path

import pytest
import yaml

from benchmarks import allowlist
from socker import config

EXAMPLE = (Path(__file__).resolve().parents[1] / "etc" / "socker.yaml").read_bytes()
REGISTRY = "registry.example.org:5443"
CREDENTIALS = "/etc/socker/registry.example.org.yaml"
PULLED = f"{REGISTRY}/bench/cold:latest"


def parsed(text):
    return config.from_document(yaml.safe_load(text))


def test_statuses_are_read_from_the_listing_socker_images_writes():
    listing = ("IMAGE                                STATUS    IMAGE ID\n"
               "socker-test/busybox:latest           present   d400a44bb102\n"
               f"{PULLED}  pullable  -\n"
               "rockylinux:9.3                       absent    -\n"
               f"{REGISTRY}/tools/*                  pullable  -\n")
    assert allowlist.statuses(listing) == {"socker-test/busybox:latest": "present", PULLED: "pullable",
                                           "rockylinux:9.3": "absent", f"{REGISTRY}/tools/*": "pullable"}


def test_images_added_to_the_example_config_are_allowed_with_what_it_allowed():
    before = parsed(EXAMPLE)
    after = parsed(allowlist.with_entries(EXAMPLE, ["bench/one:1", "bench/two:2"]))
    added = {"docker.io/bench/one:1", "docker.io/bench/two:2"}
    assert set(map(str, after.images)) == set(map(str, before.images)) | added
    assert after.registries == before.registries == ()


def test_a_registry_is_listed_with_its_credentials_where_the_config_lists_none():
    after = parsed(allowlist.with_entries(EXAMPLE, [PULLED], (REGISTRY, CREDENTIALS)))
    assert [(r.host, r.credentials) for r in after.registries] == [(REGISTRY, CREDENTIALS)]
    assert PULLED in map(str, after.images)


def test_a_registry_joins_the_registries_a_config_lists():
    site = EXAMPLE + b"registries:\n  - host: other.example.org\n"
    after = parsed(allowlist.with_entries(site, [PULLED], (REGISTRY, CREDENTIALS)))
    assert [r.host for r in after.registries] == [REGISTRY, "other.example.org"]


def test_a_registry_the_config_lists_already_is_left_as_the_site_wrote_it():
    site = EXAMPLE + f"registries:\n  - host: {REGISTRY}\n    credentials: /etc/socker/site.yaml\n".encode()
    after = parsed(allowlist.with_entries(site, [PULLED], (REGISTRY, CREDENTIALS)))
    assert [(r.host, r.credentials) for r in after.registries] == [(REGISTRY, "/etc/socker/site.yaml")]


def test_what_was_there_is_unchanged_and_every_added_line_is_marked():
    edited = allowlist.with_entries(EXAMPLE, [PULLED], (REGISTRY, CREDENTIALS))
    added = edited.splitlines()
    for line in EXAMPLE.splitlines():
        added.remove(line)
    assert added[0] == b"  - " + PULLED.encode() + allowlist.MARK
    assert added[1] == b"registries:"
    assert added[2].endswith(allowlist.MARK) and not added[3].endswith(allowlist.MARK)  # host, then its credentials
    assert len(added) == 4


@pytest.mark.parametrize("text, images, registry", [
    (b"images: [a:1]\n", ["b:1"], None),
    (b"images:\n  - a:1\nregistries: []\n", [], (REGISTRY, CREDENTIALS)),
])
def test_a_list_in_flow_style_is_not_guessed_at(text, images, registry):
    with pytest.raises(ValueError, match="block-style"):
        allowlist.with_entries(text, images, registry)
