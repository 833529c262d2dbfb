"""Decide what container a request may have: a pure function of its inputs.

`authorize` sees the request, the admin's configuration, the caller's identity
and a `HostView` (real paths resolved beforehand, as the caller, by
`hostpaths`). It does no I/O, so every rule here is unit-tested without an
engine, and the specification it returns is the only thing the engine
module turns into an API call.
"""

import posixpath
from pathlib import PurePosixPath

from . import imageref, text
from .environ import ENV_NAME
from .errors import ConfigError, HostPathError, PolicyError, UsageError
from .model import ContainerSpec, Mount

# Container paths a user may not mount over or work in: the kernel's interfaces and the
# identity files socker itself provides (runc CVE-2024-21626 used a WORKDIR under /proc).
PROTECTED_TARGETS = ("/proc", "/sys", "/dev", "/etc")
SOCKER_LABEL = "socker"
NVIDIA_DEVICES = "NVIDIA_VISIBLE_DEVICES"
# Each -v is a mount, a descriptor and a staged mount point on the host while the container runs.
MAX_VOLUMES = 64


def is_within(path, directory):
    """True if `path` is `directory` or below it, compared by whole path components."""
    return PurePosixPath(path).is_relative_to(PurePosixPath(directory))


def allowed_image(reference, config):
    """The imageref.Reference the text `reference` names if the allow-list admits it, else PolicyError."""
    try:
        wanted = imageref.parse(reference)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not is_allowed(wanted, config):
        raise PolicyError(f"image {reference!r} is not allowed on this system; see 'socker images'")
    return wanted


def is_allowed(reference, config):
    """True if the allow-list names the imageref.Reference `reference`, or a namespace holds it."""
    return reference in config.images or any(reference.in_namespace(n) for n in config.namespaces)


def registry_for(reference, config):
    """The listed registry the imageref.Reference `reference` may be pulled from, or None."""
    return next((registry for registry in config.registries if registry.host == reference.domain), None)


def authorize(request, config, identity, host, *, caller_env, job, gpu_units=()):
    """Return the ContainerSpec for `request` from a caller in `job` (or None), given the GPUs
    `gpu_units` (device files, decided by `gpus.grant`), or raise the refusal."""
    if identity.uid == 0:
        raise PolicyError("socker does not run containers for root; use docker directly")
    if job is None and config.outside_jobs is None:
        raise PolicyError("socker run is allowed only inside a batch job on this system")
    if len(request.volumes) > MAX_VOLUMES:
        raise PolicyError(f"a container may have at most {MAX_VOLUMES} volumes (-v), not {len(request.volumes)}")
    _require_engine_text(identity, host)
    image = allowed_image(request.image, config)
    mounts = _default_mounts(config, identity, host)
    mounts += [_user_volume(v, config, identity, host) for v in request.volumes]
    cwd = _mount_cwd(mounts, config, identity, host, required=request.workdir is None)
    workdir = cwd if request.workdir is None else _container_path(request.workdir, "working directory")
    if gpu_units:
        mounts += _gpu_libraries(config.gpus, host)
    _check_targets(mounts, may_nest=_home_in_a_site_mount(mounts, config, identity))
    return ContainerSpec(
        image=image,
        command=request.command,
        uid=identity.uid,
        gid=identity.gid,
        groups=identity.groups,
        env=_environment(request, identity, caller_env, config.environment_prefixes,
                         _gpu_variables(config.gpus, gpu_units)),
        mounts=tuple(mounts),
        workdir=workdir,
        interactive=request.interactive,
        tty=request.tty,
        network=config.network,
        labels=container_labels(identity, job),
        limits=config.outside_jobs if job is None else None,
        ulimits=identity.limits,
        devices=(*gpu_units, *config.gpus.shared) if gpu_units else (),
    )


def _gpu_libraries(gpus, host):
    """The driver's files, bound read-only where the host has them: they must match its kernel driver."""
    mounts = []
    for path in gpus.libraries:
        resolved = host.realpaths.get(path)
        if resolved is None:
            raise ConfigError(f"GPU library {path} does not exist on this node; tell your administrator")
        mounts.append(Mount(resolved[0], path, True))
    return mounts


def _gpu_variables(gpus, units):
    """The admin's variables numbering the container's GPUs 0..n-1, empty where it has none. They
    come after the caller's: a caller's -e of one of them is overwritten."""
    if gpus is None:
        return {}
    numbered = ",".join(str(index) for index in range(len(units)))
    # What NVIDIA's hook would read to add devices of its own (an image's "all", a caller's -e):
    # none. The engine is asked for its plain runtime anyway.
    return {NVIDIA_DEVICES: "void", **dict.fromkeys(gpus.variables, numbered)}


def _require_engine_text(identity, host):
    """What reaches the engine from the host besides argv (which cli checked) must read as it does here."""
    text.require(identity.home, "your home directory")
    if host.cwd is not None:
        text.require(host.cwd, "your current directory")


def container_labels(identity, job):
    """The labels that let the epilog and the admin find socker's containers."""
    found = {SOCKER_LABEL: "1", f"{SOCKER_LABEL}.uid": str(identity.uid)}
    if job is not None:
        found[f"{SOCKER_LABEL}.job"] = job.job_id
    return found


def permitted_roots(config, identity, host):
    """Real host directories under which the caller may mount: their home and the volume prefixes."""
    prefixes = [resolved[0] for resolved in map(host.realpaths.get, config.volume_prefixes) if resolved]
    home = _real_home(identity, host)
    return [home, *prefixes] if home else prefixes


def _real_home(identity, host):
    """The real path of the caller's home directory; None if it is missing or is / itself."""
    resolved = host.realpaths.get(identity.home)
    if resolved and resolved[1] == "dir" and resolved[0] != "/":
        return resolved[0]
    return None


def _default_mounts(config, identity, host):
    mounts = []
    for site in config.site_mounts:
        resolved = host.realpaths.get(site.source)
        if resolved is None:
            raise ConfigError(f"site mount {site.source} does not exist on this node; tell your administrator")
        mounts.append(Mount(resolved[0], site.target, site.read_only))
    home = _real_home(identity, host)
    if home and not any(_shown_at(home, m) == identity.home and not m.read_only for m in mounts):
        mounts.append(Mount(home, _container_path(identity.home, "home directory"), False))
    return mounts


def _shown_at(path, mount):
    """Where host `path` appears in the container through `mount`, or None."""
    if not is_within(path, mount.source):
        return None
    return posixpath.normpath(posixpath.join(mount.target, str(PurePosixPath(path).relative_to(mount.source))))


def _user_volume(volume, config, identity, host):
    resolved = host.realpaths.get(volume.source)
    if resolved is None:
        raise HostPathError(f"volume source {volume.source} does not exist or is not accessible to you")
    real, kind = resolved
    if kind not in ("dir", "file"):
        raise HostPathError(f"volume source {volume.source} is not a directory or a regular file")
    shown = volume.source if real == volume.source else f"{volume.source} (which is {real})"
    if not any(is_within(real, root) for root in permitted_roots(config, identity, host)):
        raise PolicyError(f"volume source {shown} is outside the directories you may mount")
    # The engine creates missing mount points as root: through a writable mount of a directory
    # the caller cannot write, into other users' directories.
    if kind == "dir" and not volume.read_only and real not in host.writable:
        raise PolicyError(f"volume source {shown} is a directory you cannot write; mount it read-only (:ro)")
    return Mount(real, _container_path(volume.target, "volume destination"), volume.read_only)


def _container_path(path, what):
    if not path.startswith("/") or posixpath.normpath(path) != path or path.startswith("//"):
        raise UsageError(f"{what} {path!r} must be a normalised absolute path")
    if path == "/" or any(is_within(path, p) for p in PROTECTED_TARGETS):
        raise PolicyError(f"{what} {path} is not allowed (/, /proc, /sys, /dev and /etc are protected)")
    return path


def _mount_cwd(mounts, config, identity, host, required):
    """The caller's current directory in the container, mounting it if policy allows.

    Returns None if it cannot be had and is not `required` (the caller gave -w).
    """
    cwd = host.cwd
    if cwd is None:
        if required:
            raise HostPathError("your current directory cannot be resolved; cd elsewhere or give -w DIR")
        return None
    for mount in sorted(mounts, key=lambda m: len(m.source), reverse=True):
        if is_within(cwd, mount.source):
            return _shown_at(cwd, mount)
    if any(is_within(cwd, root) for root in permitted_roots(config, identity, host)):
        target = _container_path(cwd, "current directory")
        mounts.append(Mount(cwd, target, read_only=cwd not in host.writable))  # as for volumes
        return target
    if not required:
        return None
    raise PolicyError(f"current directory {cwd} is outside the directories you may mount; "
                      "cd to your home or scratch, or give -w DIR")


def refuse_mounts_holding_image_volumes(spec, image_volumes):
    """The image's VOLUMEs are mounts too: none may lie inside a bind mount, where the engine
    would create its mount point as root."""
    for volume in image_volumes:
        for mount in spec.mounts:
            if volume != mount.target and is_within(volume, mount.target):
                raise PolicyError(f"the image's volume {volume} lies inside the mount destination {mount.target}; "
                                  "choose another destination")


def _home_in_a_site_mount(mounts, config, identity):
    """The set of (home mount, site mount) pairs in which a read-only site mount shows the home at
    its own path: the home exists there, below directories of the administrator's, so it may lie
    inside that mount. Empty if there is none."""
    sites = mounts[:len(config.site_mounts)]
    home = next((m for m in mounts[len(sites):] if m.target == identity.home), None)
    return {(home, site) for site in sites if home is not None and _shown_at(home.source, site) == home.target}


def _check_targets(mounts, may_nest):
    """No two destinations may be equal or nest: the engine would create the inner one as root,
    through the outer mount, on the host (and a symbolic link there could lead it anywhere)."""
    for mount in mounts:
        for other in mounts:
            if mount is other:
                continue
            if mount.target == other.target:
                raise PolicyError(f"two mounts have the same destination {mount.target}")
            if is_within(mount.target, other.target) and (mount, other) not in may_nest:
                raise PolicyError(f"mount destination {mount.target} lies inside another mount's, {other.target}; "
                                  "choose one outside it")


def _environment(request, identity, caller_env, prefixes, socker_sets):
    """The container's variables: socker's own, what the admin lets through, the caller's -e, and
    last `socker_sets`, which no caller's value replaces."""
    env = {"HOME": identity.home, "USER": identity.name, "LOGNAME": identity.name}
    # What an MPI launcher tells its ranks (OMPI_*, PMIX_*, ...), where the admin allows it.
    env.update({name: text.require(value, f"environment variable {name}") for name, value in sorted(caller_env.items())
                if name.startswith(tuple(prefixes)) and ENV_NAME.match(name)})
    if request.tty and "TERM" in caller_env:
        env["TERM"] = text.require(caller_env["TERM"], "environment variable TERM")
    for name, value in request.env:
        if value is None:
            if name not in caller_env:
                continue
            value = text.require(caller_env[name], f"environment variable {name}")
        env[name] = value
    env.update(socker_sets)
    return tuple(f"{name}={value}" for name, value in env.items())
