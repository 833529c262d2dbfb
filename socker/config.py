"""The administrator's configuration: read securely, checked key by key against its table (`KEYS`), frozen.

A run reads the file at CONFIG_PATH, fixed at build time; the caller cannot choose another
(`socker config check FILE` reads one with root given up for good).
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


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_MAX_SIZE = 1024 << 40
_MAX_PIDS = 4194304  # the kernel's PID_MAX_LIMIT on 64-bit
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Registry(Value):
    """A registry socker may pull from."""
    host: str  # host[:port], as image references name it
    credentials: str | None  # the root-only file with the account socker pulls with
    ca: str | None  # the certificate of the CA that signs the registry's; the engine must trust it
    timeout: int  # seconds a pull may go without a word from the engine
    insecure: bool = False  # the admin knows the engine reaches it without verified TLS; no credentials


class Gpus(Value):
    """The node's GPUs, and what a container that gets some of them needs besides."""
    units: tuple  # device files, one per GPU, in the order the scheduler numbers them (gres.conf)
    shared: tuple  # device files every GPU container needs too (/dev/nvidiactl, /dev/nvidia-uvm)
    libraries: tuple  # host files bound read-only at the same path: the driver's, which match the kernel's
    variables: tuple  # names set to the container's GPUs, numbered 0..n-1 (CUDA_VISIBLE_DEVICES)
    outside_jobs: tuple  # the units a container outside any job gets


class Credentials(Value):
    username: str
    password: str
    _hidden = frozenset({"password"})  # kept out of its repr, which tracebacks and any log of the value show


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
    inside_jobs_pids: int  # a job's container's pids limit, where the job sets none
    gpus: Gpus | None  # None: this node has no GPUs for containers


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


# Deeper than any configuration needs; PyYAML builds nested nodes by recursion, which a file
# nested some 100,000 deep would take past the stack.
_MAX_DEPTH = 32
_MERGE = "tag:yaml.org,2002:merge"


class _Refused(yaml.MarkedYAMLError):
    """YAML that parses, but that socker does not take: its problem may be said (it names no value)."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The safe loader, refusing a key given twice (YAML keeps the last, silently: an admin who
    adds a second `images:` would lose the first) and merge keys (`<<`), which hide where a
    value comes from."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                raise _Refused(problem="merge keys (<<) are not allowed", problem_mark=key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                continue  # the schema refuses it by name
            if key in seen:
                raise _Refused(problem=f"key {key!r} is given twice", problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _yaml(raw, path):
    try:
        depth = 0
        for event in yaml.parse(raw, Loader=_Loader):  # events come without recursion
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > _MAX_DEPTH:
                    raise _Refused(problem=f"nested deeper than {_MAX_DEPTH}", problem_mark=event.start_mark)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        return yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        said = f": {e.problem}" if isinstance(e, _Refused) else ""
        raise ConfigError(f"{path}: not valid YAML{where}{said}") from None


class _Invalid(Exception):
    def __init__(self, key, reason):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


def _device_file(value, key):
    path = _absolute_path(value, key)
    if not path.startswith("/dev/"):
        raise _Invalid(key, f"must be a device file in /dev, not {path!r}")
    return path


def _variable(value, key):
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise _Invalid(key, "must be a variable name, such as CUDA_VISIBLE_DEVICES")
    return value


def _pids(value, key):
    if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= _MAX_PIDS:
        raise _Invalid(key, f"must be an integer from 16 to {_MAX_PIDS}")
    return value


def _size(value, key):
    """Bytes from an integer or a string like 512M or 4G (powers of 1024)."""
    written = re.fullmatch(r"([0-9]+)([KMGTkmgt]?)", value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif written:
        size = int(written[1]) * _UNITS[written[2].upper()]
    else:
        raise _Invalid(key, "must be a size such as 512M or 4G")
    if size < 6 << 20:
        raise _Invalid(key, "must be at least 6M (the engine's minimum)")
    if size > _MAX_SIZE:
        raise _Invalid(key, "must be at most 1024T")
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
    if _CONTROL.search(value):  # a NUL ends a path where the kernel reads it; none is wanted anywhere
        raise _Invalid(key, "must hold no control characters")
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


def _boolean(value, key):
    if not isinstance(value, bool):
        raise _Invalid(key, "must be true or false")
    return value


def _cpus(value, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= 4096:
        raise _Invalid(key, "must be a number of CPUs between 0.01 and 4096")
    return float(value)


def _seconds(value, key):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
        raise _Invalid(key, "must be a whole number of seconds from 1 to 3600")
    return value


def _registry_host(value, key):
    host = _string(value, key)
    if not imageref.is_registry(host):
        raise _Invalid(key, f"must be a registry's host[:port] as image references name it, not {host!r}")
    return host


def _allowed(value, key):
    """An allow-list entry: an imageref.Reference, or a namespace as its canonical DOMAIN/PATH string."""
    entry = _string(value, key)
    try:
        return imageref.namespace(entry) if entry.endswith("/*") else imageref.parse(entry)
    except ValueError as e:
        raise _Invalid(key, str(e)) from None


def _each(check):
    """A list's checker from its items' `check`; each item's errors name it KEY[i]."""
    def checked(value, key):
        return tuple(check(item, f"{key}[{i}]") for i, item in enumerate(_list(value, key)))
    return checked


def unverified_registry(host):
    """What is wrong with a registry the engine reaches without verified TLS that is not called insecure."""
    return (f"registry {host}: the engine reaches it without verified TLS (plain HTTP, or a certificate it does "
            "not check); list it with insecure: true and no credentials if that is meant")


# ---------------------------------------------------------------- the keys, and the file read by them

class Key(Value):
    """One key of the configuration file. `name` is dotted as the file nests it: `engine.socket` is
    `socket` in the mapping `engine`, `registries[].host` is `host` in each mapping of the list
    `registries`. The README's table, etc/socker.yaml and socker.1 are compared with these."""
    name: str
    check: object  # (value, key as errors name it) -> what socker keeps; SECTION or ITEMS for what holds keys
    default: object  # as the file would spell it, checked like any value; REQUIRED: it must be there
    doc: str  # one line: what it is


REQUIRED, SECTION, ITEMS = "(required)", "(a mapping of keys)", "(a list of mappings of keys)"

KEYS = (
    Key("images", _each(_allowed), REQUIRED,
        "the allow-list: `NAME:TAG` or `NAME@sha256:DIGEST`, compared exactly after normalisation"),
    Key("registries", ITEMS, [], "the registries socker may pull from"),
    Key("registries[].host", _registry_host, REQUIRED, "host[:port], as image names spell it"),
    Key("registries[].credentials", _absolute_path, None, "a file only root may read: username and password"),
    Key("registries[].ca", _absolute_path, None, "the certificate of the CA that signs the registry's"),
    Key("registries[].timeout", _seconds, 60, "seconds a pull may go without a word from the engine"),
    Key("registries[].insecure", _boolean, False, "the engine reaches it without verified TLS: no credentials"),
    Key("engine", SECTION, {}, "the Docker engine"),
    Key("engine.socket", _absolute_path, "/var/run/docker.sock", "the engine's Unix socket"),
    Key("mounts", ITEMS, [], "site mounts bound into every container"),
    Key("mounts[].source", _absolute_path, REQUIRED, "the host path"),
    Key("mounts[].target", _absolute_path, None, "its path in the container (default: the same)"),
    Key("mounts[].read_only", _boolean, False, "bound read-only"),
    Key("volumes", _each(_absolute_path), [],
        "host directories under which users may bind their own paths with `-v`, besides their home"),
    Key("network", lambda value, key: _choice(value, key, NETWORKS), "none", "`none`, `bridge` or `host`"),
    Key("environment_prefixes", _each(_prefix), [],
        "the caller's variables whose names start with one of these enter every container"),
    Key("audit", SECTION, {}, "the audit trail"),
    Key("audit.facility", lambda value, key: _choice(value, key, tuple(audit.FACILITIES)), "authpriv",
        "syslog facility of the audit records"),
    Key("outside_jobs", SECTION, {}, "limits for containers started outside any batch job"),
    Key("outside_jobs.allow", _boolean, True, "false refuses runs outside jobs"),
    Key("outside_jobs.memory", _size, "2G", "memory and memory with swap"),
    Key("outside_jobs.cpus", _cpus, 1, "a CPU-time quota"),
    Key("outside_jobs.pids", _pids, 1024, "processes"),
    Key("inside_jobs", SECTION, {}, "containers in batch jobs"),
    Key("inside_jobs.pids", _pids, 4096, "the pids limit of a job's container where the job's cgroups set none"),
    Key("gpus", SECTION, None, "the node's GPUs for containers (none without it)"),
    Key("gpus.units", _each(_device_file), REQUIRED, "one device file per GPU, in the scheduler's order"),
    Key("gpus.shared", _each(_device_file), [], "device files every GPU container needs too"),
    Key("gpus.libraries", _each(_absolute_path), [], "host files bound read-only at the same path"),
    Key("gpus.variables", _each(_variable), ["CUDA_VISIBLE_DEVICES"],
        "variables set to the container's GPUs, numbered from 0"),
    Key("gpus.outside_jobs", _each(_device_file), [], "the units a container outside any job gets"),
)


def from_document(document):
    """Build a Config from a parsed YAML document; raises _Invalid naming the bad key."""
    top = _read(document, "", "(top level)")
    registries = tuple(_registry(fields, f"registries[{i}]") for i, fields in enumerate(top["registries"]))
    hosts = [registry.host for registry in registries]
    for i, host in enumerate(hosts):
        if host in hosts[:i]:
            raise _Invalid(f"registries[{i}].host", f"{host} is listed twice")
    for i, entry in enumerate(top["images"]):
        domain = str(entry).split("/")[0]
        if isinstance(entry, str) and domain not in hosts:
            raise _Invalid(f"images[{i}]", f"namespace {entry}/* is on the registry {domain}, which is not listed in "
                                           "registries")
    outside = top["outside_jobs"]
    return Config(
        socket=top["engine"]["socket"],
        images=tuple(entry for entry in top["images"] if not isinstance(entry, str)),
        namespaces=tuple(entry for entry in top["images"] if isinstance(entry, str)),
        registries=registries,
        site_mounts=tuple(SiteMount(source=m["source"], target=m["target"] or m["source"], read_only=m["read_only"])
                          for m in top["mounts"]),
        volume_prefixes=top["volumes"],
        network=top["network"],
        environment_prefixes=top["environment_prefixes"],
        audit_facility=top["audit"]["facility"],
        outside_jobs=Limits(memory_bytes=outside["memory"], cpus=outside["cpus"], pids=outside["pids"],
                            memory_swap_bytes=outside["memory"]) if outside["allow"] else None,  # no swap
        inside_jobs_pids=top["inside_jobs"]["pids"],
        gpus=_gpus(top["gpus"]) if top["gpus"] is not None else None,
    )


def _read(value, parent, where):
    """The keys of KEYS directly in the mapping `value`, which the file holds at `parent` ("" for the
    top level, `registries[]` for an item of that list); `where` is how errors name it. Returns
    {leaf name: checked value, or the checked default}."""
    inside = {key.name.rpartition(".")[2]: key for key in KEYS if key.name.rpartition(".")[0] == parent}
    mapping = _mapping(value, where, required={name for name, key in inside.items() if key.default is REQUIRED},
                       optional=set(inside))
    fields = {}
    for name, key in inside.items():
        at = name if where == "(top level)" else f"{where}.{name}"
        if name not in mapping and key.default is None:
            fields[name] = None  # absent, and nothing stands in for it
            continue
        given = mapping.get(name, key.default)  # an explicit null is checked like any value, and refused
        if key.check is SECTION:
            fields[name] = _read(given, key.name, at)
        elif key.check is ITEMS:
            fields[name] = tuple(_read(item, f"{key.name}[]", f"{at}[{i}]") for i, item in enumerate(_list(given, at)))
        else:
            fields[name] = key.check(given, at)
    return fields


def _registry(fields, key):
    host, insecure, credentials = fields["host"], fields["insecure"], fields["credentials"]
    if insecure and credentials:
        raise _Invalid(key, "an insecure registry gets no credentials: whoever listens on its port would read them")
    if not insecure and registrytrust.reached_without_verified_tls(host, registrytrust.ENGINE_DEFAULTS,
                                                                   registrytrust.without_dns):
        raise _Invalid(key, unverified_registry(host))
    return Registry(host=host, credentials=credentials, ca=fields["ca"], timeout=fields["timeout"], insecure=insecure)


def _gpus(fields):
    if not fields["units"]:
        raise _Invalid("gpus.units", "must list the device file of each GPU")
    listed = fields["units"] + fields["shared"]
    for i, path in enumerate(listed):
        if path in listed[:i]:
            raise _Invalid("gpus", f"{path} is listed twice")
    for path in fields["outside_jobs"]:
        if path not in fields["units"]:
            raise _Invalid("gpus.outside_jobs", f"{path} is not one of gpus.units")
    return Gpus(units=fields["units"], shared=fields["shared"], libraries=fields["libraries"],
                variables=fields["variables"], outside_jobs=fields["outside_jobs"])
