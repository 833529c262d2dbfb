"""The subcommands. Imported only after the environment has been cleared: it pulls in `docker`."""

import dataclasses
import os
import shlex
import stat
import sys

from . import __version__, audit, cgroups, config, guardian, hostpaths, imageref, jobs, policy, runner, securefile, statedir
from .cli import ConfigCheckRequest, ImagesRequest, RunRequest, SweepRequest, VersionRequest
from .engine import Engine
from .errors import PolicyError, SockerError


class Context:
    """What every subcommand may use: who called, with what privileges and environment."""

    def __init__(self, identity, privileges, caller_env, verbose):
        self.identity, self.privileges, self.caller_env = identity, privileges, caller_env
        self.verbose = verbose

    def say(self, message):
        if self.verbose:
            print(f"socker: {message}", file=sys.stderr)

    def load_config(self):
        with self.privileges.elevated():
            return config.load()


def dispatch(action, context):
    """Run `action`; returns the exit status."""
    if isinstance(action, RunRequest):
        return run(action, context)
    if isinstance(action, ImagesRequest):
        return images(context)
    if isinstance(action, VersionRequest):
        return version(context)
    if isinstance(action, ConfigCheckRequest):
        return config_check(action, context)
    if isinstance(action, SweepRequest):
        return sweep(context)
    raise AssertionError(f"unhandled action {action!r}")


def run(request, context):
    identity = context.identity
    record = audit.Record(action="run", user=identity.name, uid=identity.uid, job=None,
                          image=request.image, command=list(request.command))
    try:
        settings = context.load_config()
    except SockerError as e:
        record.refused(str(e))
        raise
    record.facility = settings.audit_facility
    engine = Engine(settings.socket, context.privileges)
    try:
        job = jobs.current_job(identity.uid)
        record.note(job=job.job_id if job else None)
        roots = [identity.home, *settings.volume_prefixes, *(m.source for m in settings.site_mounts)]
        host = hostpaths.look([*roots, *(v.source for v in request.volumes)])
        spec = policy.authorize(request, settings, identity, host, context.caller_env, job)
        image = _present_image(engine, spec.image, request.image)
        policy.refuse_mounts_holding_image_volumes(spec, (image.get("Config") or {}).get("Volumes") or {})
        placement = cgroups.place(job, settings.inside_jobs_pids)
        if job is not None:
            spec = dataclasses.replace(spec, limits=placement.limits)
        descriptors = hostpaths.pin(spec.mounts)
    except SockerError as e:
        record.refused(str(e))
        raise
    except KeyboardInterrupt:
        record.failed("interrupted")
        raise
    record.note(image_id=image["Id"])
    launch = runner.Launch(spec, image, runner.container_name(identity.uid, job), placement, descriptors)
    _describe(context, launch, job)
    status = None
    try:
        status, oom_killed = runner.run(launch, engine, record, identity, context.privileges)
        if oom_killed:
            limit = "the job's memory limit" if job else "the memory limit for containers outside jobs"
            print(f"socker: the container was killed: {limit} was reached", file=sys.stderr)
        return status
    finally:
        descriptors.close()
        if status is None:
            record.failed()
        else:
            record.exited(status)


def _present_image(engine, reference, shown):
    """The allowed image `reference` as this node's engine has it; refused if the node lacks it."""
    image = engine.image(reference)
    if image is None:
        raise PolicyError(f"image {shown} is allowed but not present on this node; ask your administrator to pull it")
    return image


def _describe(context, launch, job):
    """What -v says about the container before it is created."""
    spec = launch.spec
    context.say(f"{spec.image} is {launch.image['Id']}; container {launch.name}")
    for mount in spec.mounts:
        context.say(f"mount {mount.source} at {mount.target}{' read-only' if mount.read_only else ''}")
    context.say(f"command {shlex.join(spec.command) or '(image default)'} in {spec.workdir}")
    context.say(f"in {job.scheduler} job {job.job_id}, cgroup {launch.placement.parent}" if job
                else f"outside any job: limits {spec.limits}")


def sweep(context):
    """Remove the state of runs whose socker and guardian are both gone (root only)."""
    if context.identity.uid != 0:
        raise PolicyError("'socker sweep' is for root: it removes what dead runs of any user left")
    settings = context.load_config()
    engine = Engine(settings.socket, context.privileges)
    removed, problems = 0, []
    for entry, lock_fd in statedir.stale().items():
        name = entry.removeprefix(statedir.UNNAMED)
        try:
            engine.remove(name)
            left = guardian.tidy(entry, cgroups.Placement("", ()))
        except SockerError as e:
            left = [str(e)]
        finally:
            os.close(lock_fd)
        if left:
            problems.append(f"{name}: left {' '.join(left)}")
        else:
            removed += 1
            audit.record(settings.audit_facility, {"action": "sweep", "container": name, "result": "removed"})
    for problem in problems:
        print(f"socker: {problem}", file=sys.stderr)
    print(f"socker sweep: removed {removed} stale run(s)")
    return 1 if problems else 0


def images(context):
    settings = context.load_config()
    engine = Engine(settings.socket, context.privileges)
    rows = [("IMAGE", "PRESENT", "IMAGE ID")]
    for reference in settings.images:
        image = engine.image(reference)
        image_id = image["Id"] if image else None
        rows.append((imageref.familiar(reference), "yes" if image_id else "no",
                     image_id.removeprefix("sha256:")[:12] if image_id else "-"))
    width = max(len(row[0]) for row in rows)
    for name, present, image_id in rows:
        print(f"{name:<{width}}  {present:<7}  {image_id}")
    return 0


def version(context):
    print(f"socker {__version__}")
    sys.stdout.flush()
    settings = context.load_config()
    info = Engine(settings.socket, context.privileges).version()
    print(f"engine {info.get('Version', '?')} (API {info.get('ApiVersion', '?')})")
    return 0


def config_check(request, context):
    """Report every problem with a configuration file and the installation; 1 if there is any."""
    problems = []
    try:
        if request.path is None:
            settings = context.load_config()
        else:
            settings = config.load(request.path)  # as the caller: no reading files through root
    except SockerError as e:
        settings = None
        problems.append(str(e))
    problems += _installation_problems(settings)
    for problem in problems:
        print(f"socker: {problem}")
    print(f"config check: {len(problems)} problem(s)" if problems else "config check: ok")
    return 1 if problems else 0


def _installation_problems(settings):
    problems = _distribution_problems() if "__compiled__" in globals() else []
    if settings is not None:
        socket_path = os.path.realpath(settings.socket)
        try:
            st = os.stat(socket_path)
        except OSError as e:
            return problems + [f"engine socket {settings.socket}: {e.strerror}"]
        if not stat.S_ISSOCK(st.st_mode):
            problems.append(f"engine socket {settings.socket}: not a socket")
        elif st.st_mode & stat.S_IWOTH:
            problems.append(f"engine socket {settings.socket}: writable by everyone, which gives everyone root")
        problems += securefile.path_problems(os.path.dirname(socket_path), "directory")
    return problems


def _distribution_problems():
    """The compiled binary, and every module and library it loads from beside it."""
    binary = os.path.realpath("/proc/self/exe")
    problems = securefile.path_problems(binary, "the socker binary")
    for directory, subdirectories, files in os.walk(os.path.dirname(binary)):
        for name in subdirectories + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            reason = None if stat.S_ISLNK(st.st_mode) else securefile.problem(st, "file")
            if reason:
                problems.append(f"{path}: {reason}")
    return problems
