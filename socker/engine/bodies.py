"""What socker asks of the engine, built as data: pure functions, pinned by the unit tests.

Every field of a container that bears on security is set here, explicitly, whatever the
engine's defaults.
"""

import urllib.parse

import docker.auth

from .connection import API_VERSION


def container(spec, image, name, *, extra_mounts, cgroup_parent, chdir, terminal_size):
    """The SDK's create_container arguments for the container of `spec` from the exact `image` (as
    inspected), named `name`: see Engine.create."""
    config = image.get("Config") or {}
    mounts = [_bind(m.source, m.target, m.read_only) for m in (*spec.mounts, *extra_mounts)]
    host_config = {
        "Mounts": mounts,
        "Privileged": False,
        "CapDrop": ["ALL"],
        "CapAdd": [],
        "SecurityOpt": ["no-new-privileges"],
        "GroupAdd": [str(g) for g in spec.groups],
        # The device files of the container's GPUs, each alone: the engine's device filter for
        # the container (which on cgroup v2 replaces the job's) lets it use these and its defaults.
        "Devices": [{"PathOnHost": path, "PathInContainer": path, "CgroupPermissions": "rwm"}
                    for path in spec.devices],
        # The engine's own runtime, whatever the default: another (NVIDIA's) may add devices.
        "Runtime": "runc",
        "Init": True,
        "NetworkMode": spec.network,
        # Never the host's: its shared memory is every user's.
        "IpcMode": "private",
        "PidMode": "",
        "UTSMode": "",
        "UsernsMode": "",
        "CgroupParent": cgroup_parent,
        "PublishAllPorts": False,
        "RestartPolicy": {"Name": "no"},
        "AutoRemove": False,
        # Output reaches the caller through the attach stream; keep no copy on the node.
        "LogConfig": {"Type": "none", "Config": {}},
    }
    if spec.limits is not None:
        host_config.update(_limits(spec.limits))
    if spec.ulimits:
        host_config["Ulimits"] = [{"Name": limit, "Soft": soft, "Hard": hard} for limit, soft, hard in spec.ulimits]
    return dict(
        image=image["Id"],
        # The image's entrypoint, after the helper; naming an entrypoint drops the image's
        # CMD, so it is given again when the caller names no command.
        entrypoint=[chdir, *(("--size", *map(str, terminal_size)) if terminal_size else ()), spec.workdir,
                    *(config.get("Entrypoint") or [])],
        command=list(spec.command) or config.get("Cmd") or [],
        user=f"{spec.uid}:{spec.gid}",
        environment=list(spec.env),
        working_dir="/",
        labels=dict(spec.labels),
        tty=spec.tty,
        stdin_open=spec.interactive,
        name=name,
        host_config=host_config,
        network_disabled=spec.network == "none",
        use_config_proxy=False,
    )


def pull(reference, credentials):
    """(query, headers) of the pull of the imageref.Reference `reference`, by its digest if it has
    one, with `credentials` (config.Credentials, or None) for its registry."""
    headers = {}
    if credentials is not None:
        headers["X-Registry-Auth"] = docker.auth.encode_header({
            "username": credentials.username, "password": credentials.password,
            "serveraddress": reference.domain}).decode()
    return {"fromImage": reference.repository, "tag": reference.digest or reference.tag}, headers


def attach(container_id, stdin):
    """The HTTP request that turns a connection into the container's raw stdio stream."""
    query = urllib.parse.urlencode({"stream": 1, "stdout": 1, "stderr": 1, "stdin": int(stdin)})
    return (f"POST /v{API_VERSION}/containers/{container_id}/attach?{query} HTTP/1.1\r\n"
            "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n").encode()


def _limits(limits):
    """The container's own cgroup limits: each that `limits` sets (None leaves it to the parent's)."""
    found = {}
    if limits.memory_bytes is not None:
        found.update(Memory=limits.memory_bytes, MemorySwap=limits.memory_swap_bytes)
    if limits.cpus is not None:
        found["NanoCpus"] = int(limits.cpus * 1e9)
    if limits.pids is not None:
        found["PidsLimit"] = limits.pids
    return found


def _bind(source, target, read_only):
    # The Mounts API refuses a missing source instead of creating it as root, as Binds would.
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only,
            "BindOptions": {"Propagation": "rprivate"}}
