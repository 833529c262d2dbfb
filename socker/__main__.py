"""Entry point. The start-up order is fixed, and this is the one place errors become exit codes.

1. the standard descriptors exist, so no file socker opens can become stdout, and the
   signal state the caller left across exec is undone where socker depends on it;
2. the caller's identity is read from the kernel, root is dropped, the process
   is made non-dumpable and unable to gain privileges;
3. the environment is copied and cleared, before anything imports `docker`;
4. argv is parsed; only then is the configuration read and the engine used.
"""

import fcntl
import os
import signal
import sys

from . import cli, environ
from .errors import SockerError
from .host import privileges

EXIT_SOCKER_FAILED = 125  # as `docker run` does when the engine or the runner fails
EXIT_INTERRUPTED = 130  # 128 + SIGINT: ^C before the container started
EXIT_READER_LEFT = 141  # 128 + SIGPIPE: as a program killed by it, `socker images | head` under pipefail


def main(argv=None):
    _ensure_standard_descriptors()
    _reset_inherited_signals()
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, so that a reader who left is seen in this one place
        return status
    except SockerError as e:
        print(f"socker: {_one_line(str(e))}", file=sys.stderr)
        return EXIT_SOCKER_FAILED
    except BrokenPipeError:
        # Nothing more can reach the reader, and nothing more is said: not even at exit.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        return EXIT_READER_LEFT
    except OSError as e:  # a failure no module turned into a SockerError: still one line
        print(f"socker: {_one_line(str(e))}", file=sys.stderr)
        return EXIT_SOCKER_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _main(argv):
    identity = privileges.caller_identity()
    privs = privileges.Privileges(identity)
    privs.harden()
    caller_env = environ.take_environment()
    if privs.setuid and not (sys.flags.ignore_environment and sys.flags.isolated):
        raise SockerError("this socker binary's interpreter reads the environment: "
                          "it must not be installed setuid (rebuild with packaging/build)")
    arguments = sys.argv[1:] if argv is None else argv
    try:
        invocation = cli.parse(arguments)
    except SockerError as e:
        _record_refused_arguments(identity, privs, arguments, e)
        raise
    if isinstance(invocation.action, cli.HelpRequest):
        print(invocation.action.text, end="")
        return 0
    from . import commands
    return commands.dispatch(invocation.action, commands.Context(identity, privs, caller_env, invocation.verbose))


def _record_refused_arguments(identity, privs, arguments, error):
    """Arguments refused before they make a request are recorded too: a caller trying engine options
    (--privileged) is what an administrator wants to see. The configuration names the facility; one
    that cannot be read leaves the default."""
    from . import audit, config
    record = audit.Record(action="arguments", user=identity.name, uid=identity.uid, command=list(arguments))
    try:
        with privs.elevated():
            record.facility = config.load().audit_facility
    except SockerError:
        pass
    record.refused(str(error))


def _one_line(message):
    """Escape control characters, so that a name from argv cannot add lines to the message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def _ensure_standard_descriptors():
    # glibc fills closed 0-2 of a setuid program with /dev/null, but 1 and 2 read-only.
    for fd, usable in ((0, (os.O_RDONLY, os.O_RDWR)), (1, (os.O_WRONLY, os.O_RDWR)), (2, (os.O_WRONLY, os.O_RDWR))):
        try:
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE in usable:
                continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)


def _reset_inherited_signals():
    # An ignored SIGCHLD survives exec and makes the kernel reap socker's children before socker
    # waits for them; blocked signals would keep ^C and the scheduler's SIGTERM from the container.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _exit_now(status):
    """Exit without tearing down the interpreter's some 400 modules: about 20 ms of every run."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass  # the reader left; nothing more can be said
    os._exit(status)


if __name__ == "__main__":
    _exit_now(main())
