"""The subcommands. Imported only after the environment has been cleared: it pulls in `docker`."""

import os
import shlex
import stat
import sys

from . import __version__, audit, config, imageref, policy, registrytrust
from .cli import (ConfigCheckRequest, ImagesRequest, PruneRequest, PullRequest, RunRequest, SweepRequest,
                  VersionRequest)
from .engine import Engine
from .errors import PolicyError, SockerError
from .host import cgroups, devicedenials, gpus, hostpaths, jobs, securefile, statedir
from .registry import prune, pulled, pulllock, pulls
from .run import lifecycle, runner
from .value import Value


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
    return COMMANDS[type(action)].does(action, context)


class Command(Value):
    """A subcommand: what does it, and how long it keeps root within reach (the saved uid 0)."""
    does: object  # (request, Context) -> exit status
    root: str  # THROUGHOUT or UNTIL_CALLERS_FILE


# Every subcommand speaks to the engine, whose socket is root's, or keeps root's state.
# `config check FILE` gives root up for good (Privileges.drop) once it has asked the engine,
# before it reads the caller's file (tests/test_commands.py holds it to that).
THROUGHOUT, UNTIL_CALLERS_FILE = "throughout", "until the caller's file"


def run(request, context):
    identity = context.identity
    trail = lifecycle.Trail(user=identity.name, uid=identity.uid, image=request.image, command=request.command)
    with trail.ends_if_raised():
        settings = context.load_config()
        trail.configured(settings.audit_facility)
        engine = Engine(settings.socket, context.privileges)
        trail.reached("job")
        job = jobs.current_job(identity.uid)
        trail.reached("policy", job=job.job_id if job else None)
        granted = gpus.grant(settings.gpus, job, context.privileges)
        if granted.note:
            print(f"socker: {granted.note}", file=sys.stderr)
        trail.reached("policy", gpus=len(granted.units))
        roots = [identity.home, *settings.volume_prefixes, *(m.source for m in settings.site_mounts)]
        libraries = settings.gpus.libraries if granted.units else ()
        host = hostpaths.look([*roots, *libraries, *(v.source for v in request.volumes)])
        spec = policy.authorize(request, settings, identity, host, caller_env=context.caller_env, job=job,
                                gpu_units=granted.units)
        trail.reached("pull")
        image, pulled = pulls.obtain(spec.image, settings, engine, context.privileges, identity)
        trail.reached("pull", pulled=pulled, image_id=image["Id"])
        policy.refuse_mounts_holding_image_volumes(spec, (image.get("Config") or {}).get("Volumes") or {})
        trail.reached("place")
        placement = cgroups.place(job, settings.inside_jobs_pids)
        if job is not None:
            devicedenials.allow_containers(job, context.privileges)
            spec = spec.replace(limits=placement.limits)
        descriptors = hostpaths.pin(spec.mounts)
        try:
            launch = runner.Launch(spec, image, runner.container_name(identity.uid, job), placement, descriptors)
            trail.reached("create", container=launch.name)
            _describe(context, launch, job)
            status, oom_killed = runner.run(launch, engine, trail, identity, context.privileges)
        finally:
            descriptors.close()
        if oom_killed:
            limit = "the job's memory limit" if job else "the memory limit for containers outside jobs"
            print(f"socker: the container was killed: {limit} was reached", file=sys.stderr)
        return status


def _describe(context, launch, job):
    """What -v says about the container before it is created."""
    spec = launch.spec
    context.say(f"{spec.image} is {launch.image['Id']}; container {launch.name}")
    for mount in spec.mounts:
        context.say(f"mount {mount.source} at {mount.target}{' read-only' if mount.read_only else ''}")
    context.say(f"command {shlex.join(spec.command) or '(image default)'} in {spec.workdir}")
    context.say(f"in {job.scheduler} job {job.job_id}, cgroup {launch.placement.parent}" if job
                else f"outside any job: limits {spec.limits}")


def sweep(request, context):
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
            left = lifecycle.tidy(entry, cgroups.Placement("", ()))
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
    print(f"socker sweep: removed {removed} stale run(s), {pulllock.sweep()} pull lock(s) no one held and "
          f"{pulled.sweep()} half-written pull record(s)")
    return 1 if problems else 0


def pull(request, context):
    """Pull an allowed image onto this node now; refusals are audited, pulls by the puller."""
    identity = context.identity
    record = audit.Record(action="pull", user=identity.name, uid=identity.uid, image=request.image)
    try:
        settings = context.load_config()
        record.facility = settings.audit_facility
        reference = policy.allowed_image(request.image, settings)
    except SockerError as e:
        record.refused(str(e))
        raise
    engine = Engine(settings.socket, context.privileges)
    _, pulled = pulls.obtain(reference, settings, engine, context.privileges, identity)
    if pulled is None:
        print(f"socker: {reference.familiar} is present on this node", file=sys.stderr)
    return 0


def images(request, context):
    """Each allowed image: present on this node, pullable from a listed registry, or absent. What a
    namespace holds on this node follows the namespace."""
    settings = context.load_config()
    engine = Engine(settings.socket, context.privileges)
    rows = [("IMAGE", "STATUS", "IMAGE ID")]
    for reference in settings.images:
        image = engine.image(reference.engine_name)
        status = "present" if image else "pullable" if policy.registry_for(reference, settings) else "absent"
        rows.append((reference.familiar, status, _short_id(image)))
    listed = set(settings.images)
    local = engine.images() if settings.namespaces else []
    for name_space in settings.namespaces:
        rows.append((f"{imageref.familiar(name_space)}/*", "pullable", "-"))
        for image in local:
            inside = [name for name in _names(image) if name.in_namespace(name_space)]
            rows += [(name.familiar, "present", _short_id(image))
                     for name in inside if name not in listed]
    width = max(len(row[0]) for row in rows)
    for name, status, image_id in rows:
        print(f"{name:<{width}}  {status:<8}  {image_id}")
    return 0


def _names(image):
    """The names (imageref.Reference) of a listed image: its tags, or its digests if it has no tag."""
    names = []
    for name in image.get("RepoTags") or image.get("RepoDigests") or []:
        try:
            names.append(imageref.parse(name))
        except ValueError:
            continue  # <none>:<none>
    return sorted(set(names), key=str)


def _short_id(image):
    return image["Id"].removeprefix("sha256:")[:12] if image else "-"


def prune_images(request, context):
    if context.identity.uid != 0:
        raise PolicyError("'socker prune' is for root: it removes images that every user's jobs share")
    settings = context.load_config()
    prune.prune(settings, Engine(settings.socket, context.privileges))
    return 0


def version(request, context):
    print(f"socker {__version__}")
    sys.stdout.flush()
    settings = context.load_config()
    info = Engine(settings.socket, context.privileges).version()
    print(f"engine {info.get('Version', '?')} (API {info.get('ApiVersion', '?')})")
    return 0


def config_check(request, context):
    """Report every problem with a configuration file and the installation; 1 if there is any.

    A FILE the caller names is read with root given up for good: what the engine says is asked
    first, through the installed configuration's socket."""
    problems = []
    engines_view = None
    if request.path is not None:
        engines_view = _engines_registry_view(context)
        context.privileges.drop()
    try:
        settings = context.load_config() if request.path is None else config.load(request.path)
    except SockerError as e:
        settings = None
        problems.append(str(e))
    problems += _installation_problems(settings)
    if settings is not None:
        with context.privileges.elevated():
            problems += _registry_problems(settings)
        if engines_view is None:
            engines_view = _engines_registry_view(context, settings)
        problems += _unverified_registries(settings, engines_view)
        problems += _gpu_problems(settings.gpus, context.privileges)
    for problem in problems:
        print(f"socker: {problem}")
    print(f"config check: {len(problems)} problem(s)" if problems else "config check: ok")
    return 1 if problems else 0


def _engines_registry_view(context, settings=None):
    """The engine's registry settings (`Engine.registry_config`), or the line that says why not."""
    try:
        socket_path = (settings or context.load_config()).socket
        return Engine(socket_path, context.privileges).registry_config()
    except SockerError as e:
        return f"cannot ask the engine which registries it reaches without verified TLS: {e}"


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


def _registry_problems(settings):
    """The listed registries' credentials files (read, never shown) and CAs, which the engine must trust."""
    problems = []
    for registry in settings.registries:
        if registry.credentials:
            try:
                config.load_credentials(registry.credentials)
            except SockerError as e:
                problems.append(str(e))
        if registry.ca:
            trusted = f"/etc/docker/certs.d/{registry.host}/ca.crt"
            try:
                if securefile.read_trusted(trusted) != securefile.read_trusted(registry.ca):
                    problems.append(f"{trusted}: not {registry.ca}: the engine does not trust the CA "
                                    f"configured for {registry.host}")
            except SockerError as e:
                problems.append(f"registry {registry.host}: the engine must trust its CA {registry.ca}: {e}")
    return problems


def _unverified_registries(settings, engines_view):
    """The listed registries, not called insecure, that the engine reaches without verified TLS."""
    if isinstance(engines_view, str):
        return [engines_view]
    return [config.unverified_registry(registry.host) for registry in settings.registries
            if not registry.insecure and registrytrust.reached_without_verified_tls(registry.host, engines_view)]


def _gpu_problems(settings, privileges):
    """The GPUs' device files and the driver's libraries, as this node has them."""
    if settings is None:
        return []
    problems = []
    for path in (*settings.units, *settings.shared):
        try:
            gpus.probe([path], privileges)
        except SockerError as e:
            problems.append(f"gpus: {e}")
    return problems + [f"gpus: library {path}: missing" for path in settings.libraries if not os.path.exists(path)]


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


COMMANDS = {
    RunRequest: Command(run, THROUGHOUT),
    PullRequest: Command(pull, THROUGHOUT),
    ImagesRequest: Command(images, THROUGHOUT),
    PruneRequest: Command(prune_images, THROUGHOUT),
    VersionRequest: Command(version, THROUGHOUT),
    SweepRequest: Command(sweep, THROUGHOUT),
    ConfigCheckRequest: Command(config_check, UNTIL_CALLERS_FILE),
}
