"""The subcommands. Imported only after the environment has been cleared: it pulls in `docker`."""

import shlex
import sys

from . import audit, cgroups, config, hostpaths, imageref, jobs, policy, runner
from .cli import ImagesRequest, RunRequest, VersionRequest
from .engine import Engine
from .errors import SockerError
from . import __version__


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
    raise AssertionError(f"unhandled action {action!r}")


def run(request, context):
    identity = context.identity
    fields = {"action": "run", "user": identity.name, "uid": identity.uid, "job": None,
              "image": request.image, "command": list(request.command)}
    try:
        settings = context.load_config()
    except SockerError as e:
        audit.record("authpriv", {**fields, "result": "refused", "reason": str(e)})
        raise
    engine = Engine(settings.socket, context.privileges)
    try:
        job = jobs.current_job(identity.uid)
        fields["job"] = job.job_id if job else None
        roots = [identity.home, *settings.volume_prefixes, *(m.source for m in settings.site_mounts)]
        host = hostpaths.look([*roots, *(v.source for v in request.volumes)])
        spec = policy.authorize(request, settings, identity, host, context.caller_env, job)
        image_id = engine.require_image(spec.image, request.image)
        placement = cgroups.place(job)
    except SockerError as e:
        audit.record(settings.audit_facility, {**fields, "result": "refused", "reason": str(e)})
        raise
    fields["image_id"] = image_id
    name = runner.container_name(identity.uid)
    context.say(f"{spec.image} is {image_id}; container {name}")
    for mount in spec.mounts:
        context.say(f"mount {mount.source} at {mount.target}{' read-only' if mount.read_only else ''}")
    context.say(f"command {shlex.join(spec.command) or '(image default)'} in {spec.workdir}")
    context.say(f"in {job.scheduler} job {job.job_id}, cgroup {placement.parent}" if job
                else f"outside any job: limits {spec.limits}")
    status = None
    try:
        status, oom_killed = runner.run(spec, image_id, name, engine, identity, context.privileges,
                                        settings, fields, placement)
        if oom_killed:
            limit = "the job's memory limit" if job else "the memory limit for containers outside jobs"
            print(f"socker: the container was killed: {limit} was reached", file=sys.stderr)
        return status
    finally:
        result = "exited" if status is not None else "failed"
        audit.record(settings.audit_facility, {**fields, "result": result, "status": status})


def images(context):
    settings = context.load_config()
    engine = Engine(settings.socket, context.privileges)
    rows = [("IMAGE", "PRESENT", "IMAGE ID")]
    for reference in settings.images:
        image_id = engine.image_id(reference)
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
