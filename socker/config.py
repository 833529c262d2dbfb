"""The administrator's configuration: read securely, checked against a schema, frozen.

The path is fixed here, at build time; the caller cannot choose another file.
A registry's credentials live in a file of their own, which only root may read,
and are read only when an image is pulled from it (`load_credentials`).
"""

import posixpath
import re

import yaml

from . import audit, imageref, registrytrust
from .environ import ENV_NAME
from .errors import ConfigError
from .host import securefile
from .model import Limits
from .value import Value

CONFIG_PATH = "/etc/socker/socker.yaml"

NETWORKS = ("none", "bridge", "host")


class SiteMount(Value):
    source: str
    target: str
    read_only: bool


# Every key a configuration may have at its top level; the docs name each (tests/test_config.py).
TOP_LEVEL_KEYS = ("images", "registries", "engine", "mounts", "volumes", "network", "environment_prefixes", "audit",
                  "outside_jobs", "inside_jobs", "gpus")
DEFAULT_OUTSIDE_JOBS = Limits(memory_bytes=2 << 30, cpus=1.0, pids=1024, memory_swap_bytes=2 << 30)
DEFAULT_INSIDE_JOBS_PIDS = 4096
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class Registry(Value):
    """A registry socker may pull from."""
    host: str  # host[:port], as image references name it
    credentials: str | None  # the root-only file with the account socker pulls with
    ca: str | None  # the certificate of the CA that signs the registry's; the engine must trust it
    timeout: int  # seconds a pull may go without a word from the engine
    insecure: bool = False  # the admin knows the engine reaches it without verified TLS; no credentials


DEFAULT_PULL_TIMEOUT = 60


class Gpus(Value):
    """The node's GPUs, and what a container that gets some of them needs besides."""
    units: tuple  # device files, one per GPU, in the order the scheduler numbers them (gres.conf)
    shared: tuple  # device files every GPU container needs too (/dev/nvidiactl, /dev/nvidia-uvm)
    libraries: tuple  # host files bound read-only at the same path: the driver's, which match the kernel's
    variables: tuple  # names set to the container's GPUs, numbered 0..n-1 (CUDA_VISIBLE_DEVICES)
    outside_jobs: tuple  # the units a container outside any job gets


DEFAULT_GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES",)


class Credentials(Value):
    username: str
    password: str
    _hidden = frozenset({"password"})  # kept out of every repr, and so out of tracebacks and logs


class Config(Value):
    socket: str
    images: tuple  # canonical image references, exactly as allowed
    namespaces: tuple  # canonical DOMAIN/PATH: every repository directly below PATH is allowed
    registries: tuple  # of Registry
    site_mounts: tuple  # of SiteMount
    volume_prefixes: tuple  # host directories under which users may bind-mount
    network: str
    environment_prefixes: tuple  # the caller's variables with these prefixes enter the container
    audit_facility: str
    outside_jobs: Limits | None  # None: refuse to run outside a batch job
    inside_jobs_pids: int = DEFAULT_INSIDE_JOBS_PIDS  # a job's container's pids limit, where the job sets none
    gpus: Gpus | None = None  # None: this node has no GPUs for containers


def load(path=CONFIG_PATH):
    """Read, validate and freeze the configuration at `path`."""
    document = _yaml(securefile.read_trusted(path), path)
    try:
        return from_document(document)
    except _Invalid as e:
        raise ConfigError(f"{path}: {e.key}: {e.reason}") from None


def load_credentials(path):
    """The username and password in the credentials file at `path`, which root alone may read.

    No error says anything of what the file holds beyond a key's name or a line number.
    """
    document = _yaml(securefile.read_trusted(path, secret=True), path)
    try:
        section = _mapping(document, "(top level)", required={"username", "password"})
        return Credentials(username=_string(section["username"], "username"),
                           password=_string(section["password"], "password"))
    except _Invalid as e:
        raise ConfigError(f"{path}: {e.key}: {e.reason}") from None


def _yaml(raw, path):
    try:
        return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None


class _Invalid(Exception):
    def __init__(self, key, reason):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


def from_document(document):
    """Build a Config from a parsed YAML document; raises _Invalid naming the bad key."""
    top = _mapping(document, "(top level)", required={"images"}, optional=set(TOP_LEVEL_KEYS) - {"images"})
    engine = _mapping(top.get("engine", {}), "engine", optional={"socket"})
    audit_section = _mapping(top.get("audit", {}), "audit", optional={"facility"})
    registries = tuple(_registry(v, f"registries[{i}]")
                       for i, v in enumerate(_list(top.get("registries", []), "registries")))
    hosts = [registry.host for registry in registries]
    for i, host in enumerate(hosts):
        if host in hosts[:i]:
            raise _Invalid(f"registries[{i}].host", f"{host} is listed twice")
    entries = [_image(v, f"images[{i}]", hosts) for i, v in enumerate(_list(top["images"], "images"))]
    return Config(
        socket=_absolute_path(engine.get("socket", "/var/run/docker.sock"), "engine.socket"),
        images=tuple(entry for kind, entry in entries if kind == "image"),
        namespaces=tuple(entry for kind, entry in entries if kind == "namespace"),
        registries=registries,
        site_mounts=tuple(_site_mount(v, f"mounts[{i}]")
                          for i, v in enumerate(_list(top.get("mounts", []), "mounts"))),
        volume_prefixes=tuple(_absolute_path(v, f"volumes[{i}]")
                              for i, v in enumerate(_list(top.get("volumes", []), "volumes"))),
        network=_choice(top.get("network", "none"), "network", NETWORKS),
        environment_prefixes=tuple(_prefix(v, f"environment_prefixes[{i}]") for i, v in
                                   enumerate(_list(top.get("environment_prefixes", []), "environment_prefixes"))),
        audit_facility=_choice(audit_section.get("facility", "authpriv"), "audit.facility",
                               tuple(audit.FACILITIES)),
        outside_jobs=_outside_jobs(top.get("outside_jobs", {})),
        inside_jobs_pids=_pids(_mapping(top.get("inside_jobs", {}), "inside_jobs", optional={"pids"}).get(
            "pids", DEFAULT_INSIDE_JOBS_PIDS), "inside_jobs.pids"),
        gpus=_gpus(top["gpus"]) if "gpus" in top else None,
    )


def _gpus(value):
    section = _mapping(value, "gpus", required={"units"},
                       optional={"shared", "libraries", "variables", "outside_jobs"})
    units, shared, outside = (tuple(_device_file(v, f"gpus.{key}[{i}]")
                                    for i, v in enumerate(_list(section.get(key, []), f"gpus.{key}")))
                              for key in ("units", "shared", "outside_jobs"))
    if not units:
        raise _Invalid("gpus.units", "must list the device file of each GPU")
    listed = units + shared
    for i, path in enumerate(listed):
        if path in listed[:i]:
            raise _Invalid("gpus", f"{path} is listed twice")
    for path in outside:
        if path not in units:
            raise _Invalid("gpus.outside_jobs", f"{path} is not one of gpus.units")
    variables = tuple(_variable(v, f"gpus.variables[{i}]") for i, v in
                      enumerate(_list(section.get("variables", list(DEFAULT_GPU_VARIABLES)), "gpus.variables")))
    return Gpus(units=units, shared=shared, outside_jobs=outside, variables=variables,
                libraries=tuple(_absolute_path(v, f"gpus.libraries[{i}]")
                                for i, v in enumerate(_list(section.get("libraries", []), "gpus.libraries"))))


def _device_file(value, key):
    path = _absolute_path(value, key)
    if not path.startswith("/dev/"):
        raise _Invalid(key, f"must be a device file in /dev, not {path!r}")
    return path


def _variable(value, key):
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise _Invalid(key, "must be a variable name, such as CUDA_VISIBLE_DEVICES")
    return value


def _outside_jobs(value):
    section = _mapping(value, "outside_jobs", optional={"allow", "memory", "cpus", "pids"})
    allow = section.get("allow", True)
    if not isinstance(allow, bool):
        raise _Invalid("outside_jobs.allow", "must be true or false")
    if not allow:
        return None
    default = DEFAULT_OUTSIDE_JOBS
    cpus = section.get("cpus", default.cpus)
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not 0.01 <= cpus <= 4096:
        raise _Invalid("outside_jobs.cpus", "must be a number of CPUs between 0.01 and 4096")
    pids = _pids(section.get("pids", default.pids), "outside_jobs.pids")
    memory = _size(section.get("memory", default.memory_bytes), "outside_jobs.memory")
    return Limits(memory_bytes=memory, cpus=float(cpus), pids=pids, memory_swap_bytes=memory)  # no swap


def _pids(value, key):
    if isinstance(value, bool) or not isinstance(value, int) or value < 16:
        raise _Invalid(key, "must be an integer of at least 16")
    return value


def _size(value, key):
    """Bytes from an integer or a string like 512M or 4G (powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = value, ""
    elif isinstance(value, str) and value[:-1].isdigit() and value[-1:].upper() in _UNITS:
        number, unit = int(value[:-1]), value[-1].upper()
    elif isinstance(value, str) and value.isdigit():
        number, unit = int(value), ""
    else:
        raise _Invalid(key, "must be a size such as 512M or 4G")
    size = number * _UNITS[unit]
    if size < 6 << 20:
        raise _Invalid(key, "must be at least 6M (the engine's minimum)")
    return size


def _mapping(value, key, required=frozenset(), optional=frozenset()):
    if not isinstance(value, dict):
        raise _Invalid(key, "must be a mapping")
    for name in value:
        if name not in required and name not in optional:
            where = name if key == "(top level)" else f"{key}.{name}"
            raise _Invalid(where, "unknown key")
    for name in required:
        if name not in value:
            raise _Invalid(name if key == "(top level)" else f"{key}.{name}", "missing")
    return value


def _list(value, key):
    if not isinstance(value, list):
        raise _Invalid(key, "must be a list")
    return value


def _string(value, key):
    if not isinstance(value, str) or not value:
        raise _Invalid(key, "must be a non-empty string")
    return value


def _absolute_path(value, key):
    path = _string(value, key)
    if not path.startswith("/") or path.startswith("//") or posixpath.normpath(path) != path or ":" in path:
        raise _Invalid(key, f"must be a normalised absolute path without ':', not {path!r}")
    return path


def _prefix(value, key):
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise _Invalid(key, "must be the start of a variable name, such as OMPI_")
    return value


def _choice(value, key, choices):
    if value not in choices:
        raise _Invalid(key, f"must be one of {', '.join(choices)}")
    return value


def _image(value, key, registry_hosts):
    """("image", imageref.Reference) or ("namespace", canonical DOMAIN/PATH) for an allow-list entry."""
    entry = _string(value, key)
    try:
        if not entry.endswith("/*"):
            return "image", imageref.parse(entry)
        name_space = imageref.namespace(entry)
    except ValueError as e:
        raise _Invalid(key, str(e)) from None
    domain = name_space.split("/")[0]
    if domain not in registry_hosts:
        raise _Invalid(key, f"namespace {entry!r} is on the registry {domain}, which is not listed in registries")
    return "namespace", name_space


def _registry(value, key):
    section = _mapping(value, key, required={"host"}, optional={"credentials", "ca", "timeout", "insecure"})
    host = _string(section["host"], f"{key}.host")
    if not imageref.is_registry(host):
        raise _Invalid(f"{key}.host", f"must be a registry's host[:port] as image references name it, not {host!r}")
    timeout = section.get("timeout", DEFAULT_PULL_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 3600:
        raise _Invalid(f"{key}.timeout", "must be a whole number of seconds from 1 to 3600")
    insecure = section.get("insecure", False)
    if not isinstance(insecure, bool):
        raise _Invalid(f"{key}.insecure", "must be true or false")
    credentials, ca = (_absolute_path(section[name], f"{key}.{name}") if name in section else None
                       for name in ("credentials", "ca"))
    if insecure and credentials:
        raise _Invalid(key, "an insecure registry gets no credentials: whoever listens on its port would read them")
    if not insecure and registrytrust.reached_without_verified_tls(host, registrytrust.ENGINE_DEFAULTS,
                                                                   registrytrust.without_dns):
        raise _Invalid(key, unverified_registry(host))
    return Registry(host=host, credentials=credentials, ca=ca, timeout=timeout, insecure=insecure)


def unverified_registry(host):
    """What is wrong with a registry the engine reaches without verified TLS that is not called insecure."""
    return (f"registry {host}: the engine reaches it without verified TLS (plain HTTP, or a certificate it does "
            "not check); list it with insecure: true and no credentials if that is meant")


def _site_mount(value, key):
    mount = _mapping(value, key, required={"source"}, optional={"target", "read_only"})
    source = _absolute_path(mount["source"], f"{key}.source")
    read_only = mount.get("read_only", False)
    if not isinstance(read_only, bool):
        raise _Invalid(f"{key}.read_only", "must be true or false")
    return SiteMount(source=source,
                     target=_absolute_path(mount.get("target", source), f"{key}.target"),
                     read_only=read_only)
