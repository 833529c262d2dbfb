"""The subcommands' own rules, where they hold root and where they give it up."""

import os

import pytest

from helpers import make_identity
from socker import cli, commands, config
from socker.host import privileges
from socker.cli import ConfigCheckRequest

CALLER = 4242


@pytest.mark.root
def test_config_check_reads_the_callers_file_with_every_uid_the_callers(monkeypatch, capsys):
    """In a child that stands as the setuid binary does (real uid the caller's, effective and saved
    root): FILE is read with no uid left that could be raised to root."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read)
            os.setresuid(CALLER, 0, 0)
            privs = privileges.Privileges(make_identity(uid=CALLER))
            privs.harden()

            def load(path):
                os.write(write, f"{path} {os.getresuid()}".encode())
                raise config.ConfigError(f"{path}: read")

            monkeypatch.setattr(config, "load", load)
            monkeypatch.setattr(commands, "_engines_registry_view", lambda context, settings=None: {})
            context = commands.Context(make_identity(uid=CALLER), privs, {}, False)
            commands.config_check(ConfigCheckRequest("/etc/socker/other.yaml"), context)
            os.write(write, f" after {os.getresuid()}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    seen = b""
    while chunk := os.read(read, 4096):
        seen += chunk
    os.close(read)
    assert os.waitpid(pid, 0)[1] == 0
    assert seen.decode() == f"/etc/socker/other.yaml {(CALLER,) * 3} after {(CALLER,) * 3}"


def test_every_subcommand_declares_how_long_it_keeps_root():
    requests = {cls for name, cls in vars(cli).items() if name.endswith("Request") and isinstance(cls, type)
                and name not in ("VolumeRequest", "HelpRequest")}  # a -v's parts; help runs before any command
    assert requests and set(commands.COMMANDS) == requests
    assert {command.root for command in commands.COMMANDS.values()} <= {commands.THROUGHOUT,
                                                                         commands.UNTIL_CALLERS_FILE}
    # The one that gives root up is the one this module's first test holds to it.
    assert [request for request, command in commands.COMMANDS.items()
            if command.root == commands.UNTIL_CALLERS_FILE] == [ConfigCheckRequest]
