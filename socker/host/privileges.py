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
import re
import resource
import signal
from contextlib import contextmanager

from ..errors import SockerError
from ..value import Value

_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
# What a terminal or a caller sends: a detached root child ignores all of it.
_CALLERS_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                    signal.SIGWINCH, signal.SIGPIPE, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
# The caller's resource limits the container inherits, by the engine's names for them (its
# --ulimit); the engine can set every limit the kernel has but RLIMIT_RTTIME, left at its default.
_RLIMIT_LOCKS = 10  # Linux's; Python's resource module does not name it
RESOURCE_LIMITS = (("as", resource.RLIMIT_AS), ("core", resource.RLIMIT_CORE), ("cpu", resource.RLIMIT_CPU),
                   ("data", resource.RLIMIT_DATA), ("fsize", resource.RLIMIT_FSIZE),
                   ("locks", _RLIMIT_LOCKS), ("memlock", resource.RLIMIT_MEMLOCK),
                   ("msgqueue", resource.RLIMIT_MSGQUEUE), ("nice", resource.RLIMIT_NICE),
                   ("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC),
                   ("rss", resource.RLIMIT_RSS), ("rtprio", resource.RLIMIT_RTPRIO),
                   ("sigpending", resource.RLIMIT_SIGPENDING), ("stack", resource.RLIMIT_STACK))
_SETUID_STACK = 8 << 20  # the kernel's _STK_LIM
# Descriptors socker may need for itself, whatever the caller's limit: one per mount, the engine's.
DESCRIPTORS = 1024


class Identity(Value):
    uid: int
    gid: int
    groups: tuple  # supplementary gids, as the kernel reports them for this process
    name: str
    home: str
    gecos: str
    limits: tuple = ()  # the caller's resource limits as (engine name, soft, hard); -1 is unlimited

    def group_name(self, gid):
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return None


def caller_identity():
    """The real (calling) user, from the kernel's credentials and the password database, and the
    caller's resource limits, read before socker changes its own."""
    uid, gid = os.getuid(), os.getgid()
    try:
        entry = pwd.getpwuid(uid)
    except KeyError as e:
        raise SockerError(f"uid {uid} has no entry in the password database") from e
    groups = tuple(sorted(g for g in set(os.getgroups()) if g != gid))
    limits = tuple((name, *_callers_limit(which, setuid=os.geteuid() == 0 and uid != 0))
                   for name, which in RESOURCE_LIMITS)
    return Identity(uid=uid, gid=gid, groups=groups, name=entry.pw_name,
                    home=entry.pw_dir, gecos=entry.pw_gecos, limits=limits)


def _callers_limit(which, setuid):
    """The caller's (soft, hard) limit `which`, as far as this process can tell.

    The kernel lowers the stack's soft limit of a setuid program to 8 MiB: the caller's own is
    lost. Any process may raise its soft limit to its hard one, so the caller gets that: what
    `ulimit -s unlimited` in a job script asks for, and nothing the caller could not take.
    """
    soft, hard = resource.getrlimit(which)
    if setuid and which == resource.RLIMIT_STACK and soft == _SETUID_STACK and hard != soft:
        return hard, hard
    return soft, hard


def _take_descriptors(wanted):
    """Raise this process's descriptor limit to `wanted`: beyond the caller's hard limit where root
    may (CAP_SYS_RESOURCE, which a node's bounding set may withhold), else up to it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    if hard == resource.RLIM_INFINITY or hard >= wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# /proc/PID/limits names the limits so.
_PROC_LIMITS = {"Max cpu time": resource.RLIMIT_CPU, "Max file size": resource.RLIMIT_FSIZE,
                "Max data size": resource.RLIMIT_DATA, "Max stack size": resource.RLIMIT_STACK,
                "Max core file size": resource.RLIMIT_CORE, "Max resident set": resource.RLIMIT_RSS,
                "Max processes": resource.RLIMIT_NPROC, "Max open files": resource.RLIMIT_NOFILE,
                "Max locked memory": resource.RLIMIT_MEMLOCK, "Max address space": resource.RLIMIT_AS,
                "Max file locks": _RLIMIT_LOCKS, "Max pending signals": resource.RLIMIT_SIGPENDING,
                "Max msgqueue size": resource.RLIMIT_MSGQUEUE, "Max nice priority": resource.RLIMIT_NICE,
                "Max realtime priority": resource.RLIMIT_RTPRIO}


def roots_limits(proc_limits="/proc/1/limits"):
    """{resource: (soft, hard)}: init's limits, which the node's services start from."""
    limits = {}
    with open(proc_limits) as f:
        for line in f.read().splitlines()[1:]:
            name, soft, hard, *_ = re.split(r"\s{2,}", line.strip()) + [""]
            if name in _PROC_LIMITS:
                limits[_PROC_LIMITS[name]] = tuple(resource.RLIM_INFINITY if value == "unlimited" else int(value)
                                                   for value in (soft, hard))
    return limits


def take_roots_limits(limits=None):
    """Give this root child root's resource limits (`roots_limits`) instead of the caller's, as far
    as the kernel lets root: a hard limit goes up only with CAP_SYS_RESOURCE, which a node's bounding
    set may withhold, and then the soft limit goes up to the caller's hard one. A file-size limit
    that stays makes a write fail (EFBIG) rather than kill the child."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if limits is None:
        try:
            limits = roots_limits()
        except OSError:  # none to be read: as high as root may
            limits = dict.fromkeys(_PROC_LIMITS.values(), (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    for which, (soft, hard) in limits.items():
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            _, held = resource.getrlimit(which)
            resource.setrlimit(which, (_at_most(soft, held), held))


def _at_most(limit, ceiling):
    if ceiling == resource.RLIM_INFINITY:
        return limit
    return ceiling if limit == resource.RLIM_INFINITY else min(limit, ceiling)


class Privileges:
    """Switches the effective uid between the caller and root (the saved uid)."""

    def __init__(self, identity):
        self._uid = identity.uid
        # Installed setuid root and called by someone else: root must be dropped and raised.
        self.setuid = os.geteuid() == 0 and identity.uid != 0

    def harden(self):
        """Drop to the caller and make the process untraceable and unable to gain privileges by exec.

        socker's own descriptors are its business: it takes as many as it may (the container gets
        the caller's limit back).
        """
        _take_descriptors(DESCRIPTORS)
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

    def drop(self):
        """Give root up for good: every uid the caller's, so that nothing can raise it again."""
        if self.setuid:
            os.setresuid(self._uid, self._uid, self._uid)
            self.setuid = False

    @contextmanager
    def wholly_root(self):
        """Hold every uid root's for the body: for what the kernel judges by the real uid (access(2))."""
        if not self.setuid:
            yield
            return
        os.seteuid(0)
        os.setresuid(0, 0, 0)
        try:
            yield
        finally:
            os.setresuid(self._uid, self._uid, 0)

    def fork_root_child(self):
        """fork(); the child has every uid 0 from its first instruction, so the caller can never signal it.

        Returns 0 in the child, which holds root for good and starts with every signal blocked: until
        it has left the caller's session (`detach`), the terminal's ^C, ^\\ and ^Z reach it as they
        reach the caller, with no permission check, and a stopped root child is one the caller has
        parked. The child's pid in the caller's process, whose signals are as they were.
        """
        if not self.setuid:
            return os.fork()
        # The caller's process blocks them too: no KeyboardInterrupt between fork() and knowing the pid.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
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


def detach(*keep):
    """What a root child (`Privileges.fork_root_child`) does first, so that nothing of the caller's
    reaches it or is held by it: a session of its own, out of the terminal's process group; the
    caller's signals ignored; root's resource limits (`take_roots_limits`); 0-2 on /dev/null and
    every other descriptor closed but `keep`; / as its directory."""
    os.setsid()
    for sig in _CALLERS_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # blocked since the fork: what came is discarded
    take_roots_limits()
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # keep no pipe of the caller's open
    kept = sorted({*keep, 2})
    for low, high in zip(kept, kept[1:] + [os.sysconf("SC_OPEN_MAX")]):
        os.closerange(low + 1, high)
    # Then those above the limit, where a caller may leave one: listing them takes a descriptor,
    # which the limit may have had no room for before.
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd not in kept and fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass  # listdir's own, closed already
    os.chdir("/")  # keep no directory of the caller's busy
