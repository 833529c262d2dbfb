import re

import pytest

from socker import cli
from socker.cli import HelpRequest, ImagesRequest, Invocation, RunRequest, VersionRequest, VolumeRequest
from socker.errors import UsageError


def run(*args):
    """The RunRequest for `socker run ARGS...`."""
    action = cli.parse(["run", *args]).action
    assert isinstance(action, RunRequest)
    return action


def usage_error(argv):
    with pytest.raises(UsageError) as e:
        cli.parse(argv)
    message = str(e.value)
    assert message and "\n" not in message
    return message


# --- global options and commands -----------------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["images"], Invocation(False, ImagesRequest())),
    (["-v", "images"], Invocation(True, ImagesRequest())),
    (["--verbose", "images"], Invocation(True, ImagesRequest())),
    (["-v", "--verbose", "images"], Invocation(True, ImagesRequest())),
    (["--version"], Invocation(False, VersionRequest())),
    (["-v", "--version", "ignored"], Invocation(True, VersionRequest())),
    (["-h"], Invocation(False, HelpRequest())),
    (["--help", "run"], Invocation(False, HelpRequest())),
    (["run", "-h"], Invocation(False, HelpRequest())),
    (["run", "-it", "--help", "busybox"], Invocation(False, HelpRequest())),
    (["-v", "run", "busybox"], Invocation(True, run("busybox"))),
])
def test_global_options_and_commands(argv, expected):
    assert cli.parse(argv) == expected


def test_help_text_is_the_usage():
    text = cli.parse(["--help"]).action.text
    assert text == cli.USAGE and "run [OPTIONS] IMAGE" in text


@pytest.mark.parametrize("argv, words", [
    ([], "no command"),
    (["-v"], "no command"),
    (["--verbose"], "no command"),
    (["push", "busybox"], "unknown command 'push'"),
    (["exec", "x"], "unknown command"),
    (["images", "-a"], "takes no arguments"),
    (["images", "busybox"], "takes no arguments"),
    (["pull"], "takes one IMAGE"),
    (["pull", "busybox", "busybox"], "takes one IMAGE"),
    (["pull", "--all-tags", "busybox"], "unknown option '--all-tags' for 'socker pull'"),
    (["pull", "-a", "busybox"], "unknown option"),
    (["prune", "-a"], "takes no arguments"),
    (["prune", "busybox"], "takes no arguments"),
    (["-vv", "images"], "unknown option '-vv'"),
    (["--verbose=1", "images"], "unknown option"),
    (["-H", "tcp://evil:2375", "images"], "unknown option '-H'"),
    (["--host=unix:///tmp/x", "run", "busybox"], "unknown option"),
    (["run"], "needs an IMAGE"),
    (["run", "-it"], "needs an IMAGE"),
    (["run", "--"], "needs an IMAGE"),
    (["run", "-e"], "needs a value"),
    (["run", "--volume"], "needs a value"),
    (["run", "-w"], "needs a value"),
    (["run", "--tty=yes", "busybox"], "takes no value"),
    (["run", "--interactive=1", "busybox"], "takes no value"),
])
def test_usage_errors(argv, words):
    assert words in usage_error(argv)


def test_documented_options_are_all_accepted():
    # Every option the help text lists parses; none of them is left undocumented either.
    documented = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", cli.USAGE))
    assert documented == {"-v", "--verbose", "--version", "-h", "--help", "-e", "--env",
                          "--volume", "-w", "--workdir", "-i", "--interactive", "-t", "--tty"}
    valued = {"-e": "X=1", "--env": "X=1", "-v": "/a:/b", "--volume": "/a:/b", "-w": "/d", "--workdir": "/d"}
    for option in documented - {"--version", "--verbose"}:
        action = cli.parse(["run", option, *([valued[option]] if option in valued else []), "img"]).action
        assert isinstance(action, (RunRequest, HelpRequest)), option


# --- run options -------------------------------------------------------------------------------

def test_run_defaults():
    assert run("busybox") == RunRequest(image="busybox", command=(), env=(), volumes=(), workdir=None,
                                        interactive=False, tty=False)


@pytest.mark.parametrize("args", [
    ["-e", "A=1", "-v", "/h:/c:ro", "-w", "/c", "-i", "-t"],
    ["--env", "A=1", "--volume", "/h:/c:ro", "--workdir", "/c", "--interactive", "--tty"],
    ["--env=A=1", "--volume=/h:/c:ro", "--workdir=/c", "-it"],
    ["-eA=1", "-v/h:/c:ro", "-w/c", "-ti"],
    ["-eA=1", "-v/h:/c:ro", "-w/c", "-iti"],
])
def test_short_long_and_attached_forms_agree(args):
    assert run(*args, "busybox", "sh") == RunRequest(
        image="busybox", command=("sh",), env=(("A", "1"),),
        volumes=(VolumeRequest("/h", "/c", True),), workdir="/c", interactive=True, tty=True)


@pytest.mark.parametrize("args, interactive, tty", [
    (["-i"], True, False), (["-t"], False, True), (["-it"], True, True), (["-ti"], True, True),
    (["-tt"], False, True), (["-i", "-i"], True, False),
])
def test_flags(args, interactive, tty):
    request = run(*args, "busybox")
    assert (request.interactive, request.tty) == (interactive, tty)


@pytest.mark.parametrize("args, command", [
    (["busybox", "ls", "-la"], ("ls", "-la")),
    (["busybox", "-v", "/:/host", "--privileged"], ("-v", "/:/host", "--privileged")),
    (["busybox", "--"], ("--",)),
    (["busybox", "sh", "-c", "echo $HOME"], ("sh", "-c", "echo $HOME")),
    (["-i", "--", "busybox", "-it"], ("-it",)),
    (["--", "busybox", "--", "x"], ("--", "x")),
    (["busybox", "--help"], ("--help",)),
])
def test_everything_after_image_is_the_command(args, command):
    assert run(*args).command == command


def test_options_after_image_are_not_options():
    request = run("busybox", "-e", "A=1", "-v", "/a:/b", "-it")
    assert (request.env, request.volumes, request.interactive, request.tty) == ((), (), False, False)


@pytest.mark.parametrize("option", [
    "--privileged", "--user=0", "--user", "-u", "-u0", "--cap-add", "--cap-add=ALL", "--device",
    "--device=/dev/sda", "--net=host", "--network", "--cgroup-parent", "--entrypoint", "--security-opt",
    "--security-opt=seccomp=unconfined", "-p", "--rm", "--pid=host", "--ipc=host", "--userns=host",
    "--mount", "--name", "-d", "--detach", "-P", "-x", "--e", "--v", "-E", "-itv", "-ie", "-it0",
    "-img",
])
def test_unknown_run_options_are_refused(option):
    message = usage_error(["run", option, "busybox"])
    assert option.partition("=")[0][:3] in message


@pytest.mark.parametrize("option", ["--gpus", "--gpus=all", "--device=/dev/nvidia0", "--device-cgroup-rule",
                                    "--device-cgroup-rule=c 195:* rwm"])
def test_device_options_are_refused_saying_that_gpus_come_from_the_job(option):
    message = usage_error(["run", option, "busybox"])
    assert message == (f"'socker run' has no option {option.partition('=')[0]}: a container gets the GPUs of your "
                       "job (#SBATCH --gres=gpu:N) and no other device")


def test_dash_alone_is_an_image_not_an_option():
    assert run("-").image == "-"


def test_image_starting_with_dash_only_after_double_dash():
    # The parser passes it on; the image grammar (test_policy) refuses it.
    assert run("--", "--privileged").image == "--privileged"
    usage_error(["run", "--privileged"])


@pytest.mark.parametrize("value, expected", [
    ("NAME=val", ("NAME", "val")),
    ("NAME", ("NAME", None)),
    ("NAME=", ("NAME", "")),
    ("NAME=a=b", ("NAME", "a=b")),
    ("_x1=1", ("_x1", "1")),
    ("PATH=/bin:/usr/bin", ("PATH", "/bin:/usr/bin")),
    ("A=line\nbreak", ("A", "line\nbreak")),
])
def test_env(value, expected):
    assert run("-e", value, "busybox").env == (expected,)
    assert run(f"-e{value}", "busybox").env == (expected,)
    assert run(f"--env={value}", "busybox").env == (expected,)


@pytest.mark.parametrize("value", ["", "=x", "1A=x", "A-B=x", "A B=x", "A.B", "É=1", "A\n=1", "-it"])
def test_invalid_env_names(value):
    assert "invalid environment variable name" in usage_error(["run", "--env", value, "busybox"])


def test_repeated_env_keeps_order():
    assert run("-e", "A=1", "-eB", "-e", "A=2", "busybox").env == (("A", "1"), ("B", None), ("A", "2"))


@pytest.mark.parametrize("value, expected", [
    ("/a:/b", VolumeRequest("/a", "/b", False)),
    ("/a:/b:ro", VolumeRequest("/a", "/b", True)),
    ("/a:/b:rw", VolumeRequest("/a", "/b", False)),
    ("/:/host", VolumeRequest("/", "/host", False)),  # parses; policy decides
    ("/a/../b:/c/./d", VolumeRequest("/a/../b", "/c/./d", False)),
])
def test_volume(value, expected):
    assert run("-v", value, "busybox").volumes == (expected,)


@pytest.mark.parametrize("value, words", [
    ("/a", "expected SRC:DST"),
    ("/a:/b:RO", "expected SRC:DST"),
    ("/a:/b:z", "expected SRC:DST"),
    ("/a:/b:ro,z", "expected SRC:DST"),
    ("/a:/b:ro:x", "expected SRC:DST"),
    ("/a:/b:", "expected SRC:DST"),
    ("/a::/b", "expected SRC:DST"),
    ("/a:b:/c", "expected SRC:DST"),
    ("a:/b", "absolute"),
    ("/a:b", "absolute"),
    ("./a:/b", "absolute"),
    ("~/a:/b", "absolute"),
    (":/b", "absolute"),
    ("/a:", "absolute"),
    ("=/a:/b", "absolute"),
    ("", "expected SRC:DST"),
])
def test_invalid_volumes(value, words):
    assert words in usage_error(["run", "-v", value, "busybox"])


def test_verbose_before_run_is_global_and_v_after_run_is_a_volume():
    invocation = cli.parse(["-v", "run", "-v", "/a:/b", "busybox"])
    assert invocation.verbose and invocation.action.volumes == (VolumeRequest("/a", "/b", False),)
    assert "invalid volume" in usage_error(["run", "-v", "busybox", "id"])


def test_last_workdir_wins_and_is_not_checked_here():
    assert run("-w", "/a", "--workdir", "relative", "busybox").workdir == "relative"


@pytest.mark.parametrize("argv, path", [(["config", "check"], None),
                                        (["config", "check", "/etc/socker/other.yaml"], "/etc/socker/other.yaml")])
def test_config_check(argv, path):
    assert cli.parse(argv).action == cli.ConfigCheckRequest(path)


@pytest.mark.parametrize("argv", [["config"], ["config", "show"], ["config", "check", "relative.yaml"],
                                  ["config", "check", "/a", "/b"]])
def test_config_check_usage(argv):
    with pytest.raises(UsageError, match="socker config check"):
        cli.parse(argv)


@pytest.mark.parametrize("argv, position", [
    (["run", "-v", "/home/a:/x\udcfe", "img"], 3),
    (["run", "img", "echo", "\udcff"], 4),
    (["\udcffrun"], 1),
    (["run", "-e", "X=\ud800", "img"], 3),
])
def test_an_argument_that_is_not_utf8_is_refused_before_anything_else(argv, position):
    with pytest.raises(UsageError, match=f"argument {position} is not valid UTF-8"):
        cli.parse(argv)
