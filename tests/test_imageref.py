import pytest
from hypothesis import assume, given, strategies as st

from socker.imageref import Reference, familiar, is_registry, namespace, parse


def canonical(reference):
    """The canonical spelling of `reference`."""
    return str(parse(reference))

DIGEST = "sha256:" + "0123456789abcdef" * 4
BUSYBOX = "docker.io/library/busybox:latest"
TEST_IMAGE = "docker.io/socker-test/busybox:latest"


@pytest.mark.parametrize("reference, expected", [
    ("busybox", BUSYBOX),
    ("busybox:latest", BUSYBOX),
    ("library/busybox", BUSYBOX),
    ("docker.io/busybox", BUSYBOX),
    ("docker.io/library/busybox:latest", BUSYBOX),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("socker-test/busybox", TEST_IMAGE),
    ("socker-test/busybox:latest", TEST_IMAGE),
    ("docker.io/socker-test/busybox:latest", TEST_IMAGE),
    ("a/b/c/d", "docker.io/a/b/c/d:latest"),
    ("my_org/x", "docker.io/my_org/x:latest"),  # '_' cannot be in a domain: a namespace
    ("a__b/c.d/e-f/g--h", "docker.io/a__b/c.d/e-f/g--h:latest"),
    ("ghcr.io/org/tool:1.0", "ghcr.io/org/tool:1.0"),
    ("registry.example.org:5000/bio/bowtie:2", "registry.example.org:5000/bio/bowtie:2"),
    ("registry:5000/bowtie", "registry:5000/bowtie:latest"),
    ("localhost/img", "localhost/img:latest"),
    ("localhost:5000/img:v_1.2-rc", "localhost:5000/img:v_1.2-rc"),
    ("localhost", "docker.io/library/localhost:latest"),
    ("index.docker.io/busybox", "index.docker.io/busybox:latest"),  # another registry to socker
    ("busybox@" + DIGEST, "docker.io/library/busybox@" + DIGEST),
    ("busybox:1.36@" + DIGEST, "docker.io/library/busybox:1.36@" + DIGEST),
    ("socker-test/busybox:Latest", "docker.io/socker-test/busybox:Latest"),  # tags keep their case
    ("busybox:" + "t" * 128, "docker.io/library/busybox:" + "t" * 128),
    ("b" * 237, "docker.io/library/" + "b" * 237 + ":latest"),  # name of exactly 255
    ("ghcr.io/" + "b" * 247, "ghcr.io/" + "b" * 247 + ":latest"),
])
def test_canonical(reference, expected):
    assert canonical(reference) == expected
    assert canonical(expected) == expected


@pytest.mark.parametrize("reference", [
    "", " ", "busybox ", " busybox", "busybox:latest ", "busybox:latest\n", "busybox\n", "\tbusybox",
    "busybox\0", "BusyBox", "Socker-Test/busybox", "Docker.io/busybox", "busybox:", ":latest", "busybox::1",
    "busybox:latest:latest", "busybox:-tag", "busybox:.tag", "busybox:lat est", "busybox:" + "t" * 129,
    "-busybox", "--privileged", "-", "busybox-", "_busybox", "busybox/", "/busybox", "a//b", "./busybox",
    "../busybox", "busybox..x", "busybox.-x", "http://busybox", "https://ghcr.io/a/b", "ghcr.io:/a",
    "ghcr.io:port/a", "busybox@", "busybox@sha256:", "busybox@sha256:abc", "busybox@" + DIGEST + "0",
    "busybox@" + DIGEST.upper(), "busybox@SHA256:" + DIGEST[7:], "busybox@sha512:" + "0" * 128,
    "busybox@md5:" + "0" * 32, "busybox@" + DIGEST + ":tag", "[::1]:5000/busybox", "busybox*", "busy?box",
    "busybox;id", "$(id)", "b\u00fcsybox", "busybox\u200b",
])
def test_invalid_references(reference):
    with pytest.raises(ValueError, match="invalid image reference"):
        canonical(reference)


@pytest.mark.parametrize("reference", ["b" * 238, "ghcr.io/" + "b" * 248, "a/" * 127 + "b"])
def test_names_longer_than_255_are_refused(reference):
    with pytest.raises(ValueError, match="longer than 255"):
        canonical(reference)


@pytest.mark.parametrize("reference", [
    "socker-test/busybox:latest2", "socker-test/busybox2", "socker-test/busybox:Latest", "socker-test/busybox:1",
    "socker-test/busybox-x", "socker-test2/busybox", "evil/socker-test/busybox", "socker-test/busybox/x",
    "index.docker.io/socker-test/busybox", "registry-1.docker.io/socker-test/busybox", "docker.io:443/socker-test/busybox",
    "localhost/socker-test/busybox", "socker-test/busybox@" + DIGEST, "socker-test/busybox:latest@" + DIGEST,
])
def test_look_alikes_are_different_images(reference):
    assert canonical(reference) != TEST_IMAGE


@pytest.mark.parametrize("reference, expected", [
    (BUSYBOX, "busybox:latest"),
    ("docker.io/library/busybox@" + DIGEST, "busybox@" + DIGEST),
    (TEST_IMAGE, "socker-test/busybox:latest"),
    ("ghcr.io/org/tool:1.0", "ghcr.io/org/tool:1.0"),
    ("localhost:5000/img:latest", "localhost:5000/img:latest"),
    ("index.docker.io/busybox:latest", "index.docker.io/busybox:latest"),
    ("docker.io/library/foo/bar:latest", "library/foo/bar:latest"),
    ("docker.io/localhost/x:latest", "docker.io/localhost/x:latest"),
    ("docker.io/a.b/x:latest", "docker.io/a.b/x:latest"),
])
def test_familiar(reference, expected):
    assert familiar(reference) == expected == parse(reference).familiar
    assert canonical(familiar(reference)) == reference


# --- properties over generated references ---------------------------------------------------------

_alnum = st.text("abcxyz0189", min_size=1, max_size=4)
_component = st.one_of(
    st.sampled_from(["library", "localhost", "busybox"]),
    st.builds(lambda a, sep, b: a + sep + b if sep is not None else a,
              _alnum, st.sampled_from([None, ".", "_", "__", "-", "--"]), _alnum))
_domain = st.sampled_from([None, "docker.io", "ghcr.io", "localhost", "localhost:5000", "registry.example.org:443"])
_tag = st.one_of(st.none(), st.builds(str.__add__, st.sampled_from("aZ9_"), st.text("aZ9_.-", max_size=8)))
_digest = st.one_of(st.none(), st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()))


@st.composite
def references(draw):
    domain, tag, digest = draw(_domain), draw(_tag), draw(_digest)
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=3)))
    return (f"{domain}/" if domain else "") + path + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@given(references())
def test_canonical_is_idempotent_and_explicit(reference):
    name = canonical(reference)
    assert canonical(name) == name and parse(name) == parse(reference)
    first = reference.split("/")[0]
    explicit = "/" in reference and ("." in first or ":" in first or first == "localhost")
    assert name.startswith(f"{first}/" if explicit else "docker.io/")
    assert ":" in name.rsplit("/", 1)[1] or "@sha256:" in name  # a tag or a digest, always


@given(references())
def test_familiar_round_trips(reference):
    name = canonical(reference)
    assert canonical(familiar(name)) == name


@given(references(), st.sampled_from([" ", "\n", "\t", "\0", "\r\n", "\u00a0"]), st.booleans())
def test_whitespace_anywhere_at_the_ends_is_refused(reference, junk, at_end):
    with pytest.raises(ValueError):
        canonical(reference + junk if at_end else junk + reference)


@given(st.lists(_component, min_size=1, max_size=3).map("/".join))
def test_upper_case_names_are_refused(path):
    assume(path.upper() != path)
    with pytest.raises(ValueError):
        canonical(path.upper())


# --- namespaces -------------------------------------------------------------------------------------

REGISTRY = "registry.example.org:5443"
BIO = f"{REGISTRY}/bio"


@pytest.mark.parametrize("entry, expected", [
    (f"{BIO}/*", BIO),
    (f"{REGISTRY}/bio/tools/*", f"{REGISTRY}/bio/tools"),
    ("ghcr.io/org/*", "ghcr.io/org"),
    ("localhost:5000/team/*", "localhost:5000/team"),
    ("bio/*", "docker.io/bio"),
    ("library/*", "docker.io/library"),
    ("docker.io/bio/*", "docker.io/bio"),
])
def test_namespace(entry, expected):
    assert namespace(entry) == expected


@pytest.mark.parametrize("entry", [f"{REGISTRY}/*", "ghcr.io/*", "localhost/*", "localhost:5000/*", "docker.io/*",
                                   "registry:5000/*"])
def test_a_registrys_top_level_is_no_namespace(entry):
    with pytest.raises(ValueError, match="top level"):
        namespace(entry)


@pytest.mark.parametrize("entry", [
    "*", "/*", f"{BIO}", f"{BIO}/", f"{BIO}/**", f"{BIO}/*/*", f"{BIO}/*/x", f"{BIO}/b*", f"{BIO}/*:latest",
    f"{BIO}/*@" + DIGEST, f"{REGISTRY}/Bio/*", f"{REGISTRY}/bio/../*", f"{REGISTRY}/./bio/*", f"{REGISTRY}//bio/*",
    f"{REGISTRY.upper()}/bio/*", f"https://{BIO}/*", f" {BIO}/*", f"{BIO}/* ", f"{BIO}/*\n", "[::1]:5443/bio/*",
])
def test_invalid_namespaces(entry):
    with pytest.raises(ValueError, match="invalid namespace|top level"):
        namespace(entry)


@pytest.mark.parametrize("reference", [
    f"{BIO}/bowtie", f"{BIO}/bowtie:2.5", f"{BIO}/bowtie@" + DIGEST, f"{BIO}/bowtie:2.5@" + DIGEST, f"{BIO}/b.o_w-t",
])
def test_a_namespace_holds_the_repositories_directly_below_it(reference):
    assert parse(reference).in_namespace(BIO)


@pytest.mark.parametrize("reference", [
    f"{BIO}",                                   # the namespace itself
    f"{BIO}/tools/bowtie",                      # an extra component
    f"{REGISTRY}/bioinformatics/bowtie",        # a longer name
    f"{REGISTRY}/bi/bowtie",                    # a shorter one
    f"{REGISTRY}/bowtie",                       # the registry's top level
    f"{REGISTRY}/x/bio/bowtie",                 # the namespace further down
    "registry.example.org:5444/bio/bowtie",     # another port: another registry
    "registry.example.org/bio/bowtie",          # the default port
    "registry.example.org:05443/bio/bowtie",    # the port spelt otherwise
    "registry.example.org.evil:5443/bio/bowtie",
    "bio/bowtie",                               # Docker Hub
])
def test_namespace_look_alikes_are_outside_it(reference):
    assert not parse(reference).in_namespace(BIO)


@given(references(), st.sampled_from([BIO, "docker.io/library", "docker.io/bio", "ghcr.io/org", "localhost:5000"]))
def test_in_a_namespace_exactly_when_the_repository_is_one_component_below_it(reference, name_space):
    parsed = parse(reference)
    repository = parsed.repository
    expected = repository.startswith(name_space + "/") and "/" not in repository[len(name_space) + 1:]
    assert parsed.in_namespace(name_space) is expected


def test_a_reference_is_taken_apart_once_and_compares_whole():
    assert parse("busybox") == parse("docker.io/library/busybox:latest") == Reference(
        "docker.io", "library/busybox", "latest", None)
    assert parse("busybox") != parse("busybox:1.36") and parse("busybox") != "docker.io/library/busybox:latest"
    p = parse(f"{BIO}/bowtie:2.5@" + DIGEST)
    assert (p.domain, p.path, p.tag, p.digest) == (REGISTRY, "bio/bowtie", "2.5", DIGEST)
    assert p.repository == f"{BIO}/bowtie" and p.engine_name == f"{BIO}/bowtie@" + DIGEST
    assert str(p) == f"{BIO}/bowtie:2.5@" + DIGEST
    assert parse(f"{BIO}/bowtie:2.5").engine_name == f"{BIO}/bowtie:2.5"
    assert parse("busybox@" + DIGEST).tag is None


@pytest.mark.parametrize("host, expected", [
    (REGISTRY, True), ("ghcr.io", True), ("localhost", True), ("localhost:5000", True), ("registry:5000", True),
    ("registry", False), ("Registry.example.org", False), (f"{REGISTRY}/bio", False), ("https://ghcr.io", False),
    ("[::1]:5443", False), ("ghcr.io:", False), ("", False), ("ghcr.io ", False),
])
def test_is_registry(host, expected):
    assert is_registry(host) is expected
