"""Who called socker, and root held only around the calls that need it.

socker is installed setuid root: the real uid is the caller, the effective and
saved uids are 0. At start-up the effective uid is lowered to the caller's and
raised again only by `elevated()`, so that every file the caller names is
opened with the caller's own permissions.
"""

import ctypes
import grp
import os
import pwd
import signal
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import SockerError

_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_INTERRUPTING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple  # supplementary gids, as the kernel reports them for this process
    name: str
    home: str
    gecos: str

    def group_name(self, gid):
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return None


def caller_identity():
    """The real (calling) user, from the kernel's credentials and the password database."""
    uid, gid = os.getuid(), os.getgid()
    try:
        entry = pwd.getpwuid(uid)
    except KeyError as e:
        raise SockerError(f"uid {uid} has no entry in the password database") from e
    groups = tuple(sorted(g for g in set(os.getgroups()) if g != gid))
    return Identity(uid=uid, gid=gid, groups=groups, name=entry.pw_name,
                    home=entry.pw_dir, gecos=entry.pw_gecos)


class Privileges:
    """Switches the effective uid between the caller and root (the saved uid)."""

    def __init__(self, identity):
        self._uid = identity.uid
        # Installed setuid root and called by someone else: root must be dropped and raised.
        self.setuid = os.geteuid() == 0 and identity.uid != 0

    def harden(self):
        """Drop to the caller and make the process untraceable and unable to gain privileges by exec."""
        libc = ctypes.CDLL(None, use_errno=True)
        for option in (_PR_SET_NO_NEW_PRIVS, _PR_SET_DUMPABLE):
            value = 1 if option == _PR_SET_NO_NEW_PRIVS else 0
            if libc.prctl(option, value, 0, 0, 0) != 0:
                raise SockerError(f"prctl({option}) failed: {os.strerror(ctypes.get_errno())}")
        os.umask(0o022)
        if self.setuid:
            os.seteuid(self._uid)

    @contextmanager
    def elevated(self):
        """Hold root for the body of the with-statement only."""
        if not self.setuid:
            yield
            return
        os.seteuid(0)
        try:
            yield
        finally:
            os.seteuid(self._uid)

    def fork_root_child(self):
        """fork(); the child has every uid 0 from its first instruction, so the caller can never signal it.

        Returns 0 in the child, which holds root for good and starts with SIGINT, SIGTERM, SIGHUP
        and SIGQUIT blocked (a terminal reaches its whole process group: the child unblocks them
        once it ignores them), and the child's pid in the caller's process, as it was.
        """
        if not self.setuid:
            return os.fork()
        # No KeyboardInterrupt between fork() and knowing the pid: a guardian nobody knows of.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTING)
        pid = -1
        try:
            os.seteuid(0)
            os.setresuid(0, 0, 0)
            pid = os.fork()
        finally:
            if pid != 0:
                os.setresuid(self._uid, self._uid, 0)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if pid == 0:
            self.setuid = False  # nothing left to switch
        return pid
