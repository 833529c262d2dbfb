"""Whatever socker sends the engine means to the engine what it meant to socker's checks.

The engine decodes JSON with Go, which turns bytes that are not UTF-8 into U+FFFD: two paths that
differ for socker would be one for the engine. socker refuses such text before any check runs.
"""

import os

import pytest

from helpers import ALICE, IMAGE, SOCKER, TEST_CONFIG, refused, run_as, socker, user


@pytest.fixture
def nest(alice_scratch):
    home = user(ALICE).pw_dir
    for name in ("A", "B"):
        path = f"{home}/n/{name}"
        os.makedirs(path, exist_ok=True)
        os.chown(f"{home}/n", user(ALICE).pw_uid, user(ALICE).pw_gid)
        os.chown(path, user(ALICE).pw_uid, user(ALICE).pw_gid)
    yield f"{home}/n".encode()
    for name in ("A", "B"):
        for leftover in os.listdir(f"{home}/n/{name}"):
            path = f"{home}/n/{name}/{leftover}"
            os.rmdir(path) if os.path.isdir(path) else os.unlink(path)


def test_two_destinations_that_are_one_for_the_engine_are_refused(nest):
    result = socker(ALICE, "run", b"-v", nest + b"/A:/x\xfe", b"-v", nest + b"/B:/x\xff/made-by-root", IMAGE, "true")
    refused(result, "not valid UTF-8")
    assert os.listdir(nest + b"/A") == [] and os.listdir(nest + b"/B") == []


@pytest.mark.parametrize("args", [
    [b"-v", b"/home/socker-alice:/data\xff"],             # a destination
    [b"-v", b"/home/socker-alice/\xfe:/data"],            # a source
    [b"-w", b"/tmp/\xc3"],                                # a working directory (a cut sequence)
    [b"-e", b"X=\xff"],                                   # an environment value
    [b"-e", b"X\xff=1"],                                  # an environment name
    [b"-e", b"X=\xed\xa0\x80"],                           # an encoded surrogate (CESU), not UTF-8
    [IMAGE.encode() + b"\xff"],                           # the image
    [IMAGE.encode(), b"echo", b"\xfe"],                   # the command
], ids=["destination", "source", "workdir", "env-value", "env-name", "surrogate", "image", "command"])
def test_text_that_is_not_utf8_is_refused_wherever_it_stands(args):
    options = args[0].startswith(b"-")
    refused(socker(ALICE, b"run", *args, *([IMAGE.encode(), b"true"] if options else [])), "not valid UTF-8")


def test_a_current_directory_that_is_not_utf8_is_refused(alice_scratch):
    odd = os.fsencode(str(alice_scratch)) + b"/dir\xff"
    os.mkdir(odd)
    os.chown(odd, user(ALICE).pw_uid, user(ALICE).pw_gid)
    refused(run_as(ALICE, [SOCKER, "run", IMAGE, "true"], cwd=odd), "current directory", "not valid UTF-8")


def test_a_copied_variable_that_is_not_utf8_is_refused(site_config):
    site_config(TEST_CONFIG + "environment_prefixes: [OMPI_]\n")
    refused(socker(ALICE, "run", IMAGE, "true", env={b"OMPI_X": b"\xff"}), "OMPI_X", "not valid UTF-8")
    refused(socker(ALICE, "run", "-e", "COPY", IMAGE, "true", env={b"COPY": b"a\xfeb"}), "COPY", "not valid UTF-8")


def test_valid_text_beyond_ascii_reaches_the_container_unchanged(alice_scratch):
    name = "données-π-😀"
    (alice_scratch / name).mkdir()
    os.chown(alice_scratch / name, user(ALICE).pw_uid, user(ALICE).pw_gid)
    result = socker(ALICE, "run", "-v", f"{alice_scratch}/{name}:/d/{name}", "-e", f"V={name}", IMAGE,
                    "sh", "-c", 'echo "$V"; echo /d/*')
    assert (result.returncode, result.stdout.decode()) == (0, f"{name}\n/d/{name}\n"), result.stderr
