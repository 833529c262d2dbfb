import os
import re

import pytest

from socker import config, model
from socker.config import SiteMount, from_document
from socker.errors import ConfigError

MINIMAL = {"images": ["busybox"]}


def spelt(images):
    """The allow-list's images in their canonical spelling."""
    return tuple(str(image) for image in images)


def invalid(document):
    """The (key, reason) from_document names for an invalid document."""
    with pytest.raises(config._Invalid) as e:
        from_document(document)
    assert "\n" not in str(e.value)
    return e.value.key, e.value.reason


def test_minimal_document_and_defaults():
    c = from_document(MINIMAL)
    assert spelt(c.images) == ("docker.io/library/busybox:latest",)
    assert c.socket == "/var/run/docker.sock"
    assert (c.site_mounts, c.volume_prefixes) == ((), ())
    assert (c.network, c.audit_facility) == ("none", "authpriv")
    assert c.outside_jobs == model.Limits(memory_bytes=2 << 30, cpus=1.0, pids=1024, memory_swap_bytes=2 << 30)
    assert (c.inside_jobs_pids, c.gpus, c.registries) == (4096, None, ())


def test_full_document():
    c = from_document({
        "images": ["socker-test/busybox:latest", "ghcr.io/org/tool@sha256:" + "a" * 64],
        "engine": {"socket": "/run/docker.sock"},
        "mounts": [{"source": "/cluster/software", "read_only": True},
                   {"source": "/work", "target": "/data", "read_only": False}],
        "volumes": ["/scratch", "/projects"],
        "network": "bridge",
        "audit": {"facility": "local3"},
        "outside_jobs": {"allow": True, "memory": "512M", "cpus": 0.5, "pids": 64},
    })
    assert spelt(c.images) == ("docker.io/socker-test/busybox:latest", "ghcr.io/org/tool@sha256:" + "a" * 64)
    assert c.socket == "/run/docker.sock"
    assert c.site_mounts == (SiteMount("/cluster/software", "/cluster/software", True),
                             SiteMount("/work", "/data", False))
    assert c.volume_prefixes == ("/scratch", "/projects")
    assert (c.network, c.audit_facility) == ("bridge", "local3")
    assert c.outside_jobs == model.Limits(memory_bytes=512 << 20, cpus=0.5, pids=64, memory_swap_bytes=512 << 20)


@pytest.mark.parametrize("document", [{**MINIMAL, "volumes": ["//scratch"]},
                                      {**MINIMAL, "mounts": [{"source": "/a", "target": "//software"}]}])
def test_double_slash_paths_are_not_normalised(document):
    invalid(document)


def test_empty_image_list_is_valid():
    assert spelt(from_document({"images": []}).images) == ()


@pytest.mark.parametrize("network", config.NETWORKS)
def test_networks(network):
    assert from_document({**MINIMAL, "network": network}).network == network


@pytest.mark.parametrize("facility", ["auth", "authpriv", "daemon", "user", "local0", "local7"])
def test_facilities(facility):
    assert from_document({**MINIMAL, "audit": {"facility": facility}}).audit_facility == facility


def test_gpus_and_their_defaults():
    gpus = config.from_document({**MINIMAL, "gpus": {"units": ["/dev/nvidia0", "/dev/nvidia1"]}}).gpus
    assert gpus == config.Gpus(units=("/dev/nvidia0", "/dev/nvidia1"), shared=(), libraries=(),
                               variables=("CUDA_VISIBLE_DEVICES",), outside_jobs=())
    assert config.from_document(MINIMAL).gpus is None


def test_outside_jobs_can_be_refused():
    assert from_document({**MINIMAL, "outside_jobs": {"allow": False}}).outside_jobs is None


@pytest.mark.parametrize("document, key, reason", [
    (None, "(top level)", "must be a mapping"),
    ([], "(top level)", "must be a mapping"),
    ("images: [busybox]", "(top level)", "must be a mapping"),
    ({}, "images", "missing"),
    ({"image": ["busybox"]}, "image", "unknown key"),
    ({**MINIMAL, "privileged": True}, "privileged", "unknown key"),
    ({"images": "busybox"}, "images", "must be a list"),
    ({"images": None}, "images", "must be a list"),
    ({"images": ["busybox", 5]}, "images[1]", "must be a non-empty string"),
    ({"images": [""]}, "images[0]", "must be a non-empty string"),
    ({"images": [["busybox"]]}, "images[0]", "must be a non-empty string"),
    ({"images": ["BusyBox"]}, "images[0]", "invalid image reference"),
    ({"images": ["busybox:latest "]}, "images[0]", "invalid image reference"),
    ({"images": ["busybox*"]}, "images[0]", "invalid image reference"),
    ({"images": ["b" * 300]}, "images[0]", "longer than 255"),
    ({**MINIMAL, "engine": "/var/run/docker.sock"}, "engine", "must be a mapping"),
    ({**MINIMAL, "engine": None}, "engine", "must be a mapping"),
    ({**MINIMAL, "engine": {"host": "tcp://x"}}, "engine.host", "unknown key"),
    ({**MINIMAL, "engine": {"socket": 5}}, "engine.socket", "must be a non-empty string"),
    ({**MINIMAL, "engine": {"socket": "docker.sock"}}, "engine.socket", "normalised absolute path"),
    ({**MINIMAL, "engine": {"socket": "tcp://1.2.3.4:2375"}}, "engine.socket", "normalised absolute path"),
    ({**MINIMAL, "mounts": {"source": "/x"}}, "mounts", "must be a list"),
    ({**MINIMAL, "mounts": ["/x"]}, "mounts[0]", "must be a mapping"),
    ({**MINIMAL, "mounts": [{}]}, "mounts[0].source", "missing"),
    ({**MINIMAL, "mounts": [{"target": "/x"}]}, "mounts[0].source", "missing"),
    ({**MINIMAL, "mounts": [{"source": "/a"}, {"source": 7}]}, "mounts[1].source", "must be a non-empty string"),
    ({**MINIMAL, "mounts": [{"source": "relative"}]}, "mounts[0].source", "normalised absolute path"),
    ({**MINIMAL, "mounts": [{"source": "/a", "target": "b"}]}, "mounts[0].target", "normalised absolute path"),
    ({**MINIMAL, "mounts": [{"source": "/a", "target": "/b:/c"}]}, "mounts[0].target", "without ':'"),
    ({**MINIMAL, "mounts": [{"source": "/a", "read_only": "yes"}]}, "mounts[0].read_only", "true or false"),
    ({**MINIMAL, "mounts": [{"source": "/a", "read_only": 1}]}, "mounts[0].read_only", "true or false"),
    ({**MINIMAL, "mounts": [{"source": "/a", "ro": True}]}, "mounts[0].ro", "unknown key"),
    ({**MINIMAL, "volumes": "/scratch"}, "volumes", "must be a list"),
    ({**MINIMAL, "volumes": [None]}, "volumes[0]", "must be a non-empty string"),
    ({**MINIMAL, "volumes": ["/scratch", ""]}, "volumes[1]", "must be a non-empty string"),
    ({**MINIMAL, "volumes": ["/scratch/"]}, "volumes[0]", "not '/scratch/'"),
    ({**MINIMAL, "volumes": ["/scratch/../etc"]}, "volumes[0]", "normalised absolute path"),
    ({**MINIMAL, "volumes": ["/scratch/./x"]}, "volumes[0]", "normalised absolute path"),
    ({**MINIMAL, "volumes": ["/a//b"]}, "volumes[0]", "normalised absolute path"),
    ({**MINIMAL, "volumes": ["scratch"]}, "volumes[0]", "not 'scratch'"),
    ({**MINIMAL, "volumes": ["~/x"]}, "volumes[0]", "normalised absolute path"),
    ({**MINIMAL, "volumes": ["/a:b"]}, "volumes[0]", "without ':'"),
    ({**MINIMAL, "network": "Host"}, "network", "must be one of none, bridge, host"),
    ({**MINIMAL, "network": "container:other"}, "network", "must be one of"),
    ({**MINIMAL, "network": None}, "network", "must be one of"),
    ({**MINIMAL, "network": False}, "network", "must be one of"),  # YAML's unquoted `no`
    ({**MINIMAL, "network": ["none"]}, "network", "must be one of"),
    ({**MINIMAL, "audit": "authpriv"}, "audit", "must be a mapping"),
    ({**MINIMAL, "audit": {"facility": "kern"}}, "audit.facility", "must be one of"),
    ({**MINIMAL, "audit": {"facility": "AUTHPRIV"}}, "audit.facility", "must be one of"),
    ({**MINIMAL, "audit": {"level": "info"}}, "audit.level", "unknown key"),
    ({**MINIMAL, "outside_jobs": True}, "outside_jobs", "must be a mapping"),
    ({**MINIMAL, "outside_jobs": {"allow": "no"}}, "outside_jobs.allow", "true or false"),
    ({**MINIMAL, "outside_jobs": {"memory": "2GB"}}, "outside_jobs.memory", "size"),
    ({**MINIMAL, "outside_jobs": {"memory": "1M"}}, "outside_jobs.memory", "at least 6M"),
    ({**MINIMAL, "outside_jobs": {"memory": True}}, "outside_jobs.memory", "size"),
    ({**MINIMAL, "outside_jobs": {"cpus": 0}}, "outside_jobs.cpus", "between"),
    ({**MINIMAL, "outside_jobs": {"cpus": "1"}}, "outside_jobs.cpus", "between"),
    ({**MINIMAL, "outside_jobs": {"pids": 8}}, "outside_jobs.pids", "from 16 to"),
    ({**MINIMAL, "outside_jobs": {"pids": 100.5}}, "outside_jobs.pids", "integer"),
    ({**MINIMAL, "outside_jobs": {"swap": "1G"}}, "outside_jobs.swap", "unknown key"),
    ({**MINIMAL, "gpus": {}}, "gpus.units", "missing"),
    ({**MINIMAL, "gpus": {"units": []}}, "gpus.units", "must list the device file of each GPU"),
    ({**MINIMAL, "gpus": {"units": ["/home/alice/gpu"]}}, "gpus.units[0]", "device file in /dev"),
    ({**MINIMAL, "gpus": {"units": ["/dev/../home/gpu"]}}, "gpus.units[0]", "normalised"),
    ({**MINIMAL, "gpus": {"units": ["/dev/g0"], "shared": ["/dev/g0"]}}, "gpus", "/dev/g0 is listed twice"),
    ({**MINIMAL, "gpus": {"units": ["/dev/g0"], "outside_jobs": ["/dev/g1"]}}, "gpus.outside_jobs",
     "not one of gpus.units"),
    ({**MINIMAL, "gpus": {"units": ["/dev/g0"], "variables": ["CUDA-DEVICES"]}}, "gpus.variables[0]",
     "variable name"),
    ({**MINIMAL, "gpus": {"units": ["/dev/g0"], "libraries": ["lib/libcuda.so"]}}, "gpus.libraries[0]",
     "absolute path"),
    ({**MINIMAL, "gpus": {"units": ["/dev/g0"], "count": 1}}, "gpus.count", "unknown key"),
    ({**MINIMAL, "gpus": {"units": ["/dev/g0"], "scontrol": "/usr/bin/scontrol"}}, "gpus.scontrol", "unknown key"),
])
def test_invalid_documents_name_the_key(document, key, reason):
    found_key, found_reason = invalid(document)
    assert found_key == key and reason in found_reason


# --- load(): the file, read only if root alone could have written it ------------------------------

VALID_YAML = """\
images:
  - socker-test/busybox:latest
volumes:
  - /scratch
mounts:
  - source: /cluster/software
    target: /software
    read_only: true
network: none
"""


@pytest.fixture
def conf_dir(tmp_path):
    directory = tmp_path / "etc" / "socker"
    directory.mkdir(parents=True)
    for d in (tmp_path / "etc", directory):
        os.chmod(d, 0o755)
    return directory


def write_config(conf_dir, text=VALID_YAML, mode=0o644):
    path = conf_dir / "socker.yaml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def load_error(path):
    with pytest.raises(ConfigError) as e:
        config.load(str(path))
    message = str(e.value)
    assert "\n" not in message
    return message


@pytest.mark.root
def test_load_valid_file(conf_dir):
    c = config.load(str(write_config(conf_dir)))
    assert spelt(c.images) == ("docker.io/socker-test/busybox:latest",)
    assert c.site_mounts == (SiteMount("/cluster/software", "/software", True),)
    assert c.volume_prefixes == ("/scratch",)


@pytest.mark.root
def test_the_shipped_example_configuration_is_valid(conf_dir):
    shipped = os.path.join(os.path.dirname(__file__), "..", "etc", "socker.yaml")
    with open(shipped) as f:
        c = config.load(str(write_config(conf_dir, f.read())))
    assert "docker.io/socker-test/busybox:latest" in spelt(c.images) and c.network == "none"


def test_the_shipped_example_of_gpus_is_valid_once_uncommented(conf_dir):
    shipped = os.path.join(os.path.dirname(__file__), "..", "etc", "socker.yaml")
    with open(shipped) as f:
        text = f.read()
    example = "\n".join(line[1:] for line in text[text.index("#gpus:"):].splitlines() if line.startswith("#"))
    c = config.load(str(write_config(conf_dir, f"{text}\n{example}\n")))
    assert c.gpus.units[0] == "/dev/nvidia0" and c.gpus.variables == ("CUDA_VISIBLE_DEVICES",)


@pytest.mark.root
def test_load_names_file_and_key(conf_dir):
    path = write_config(conf_dir, "images: [busybox]\nmounts:\n  - source: relative\n")
    message = load_error(path)
    assert message.startswith(f"{path}: mounts[0].source: must be a normalised absolute path")


@pytest.mark.root
def test_load_yaml_syntax_error_gives_the_line(conf_dir):
    path = write_config(conf_dir, "images:\n  - busybox\nnetwork: [none\n")
    assert load_error(path).startswith(f"{path}: not valid YAML at line ")


@pytest.mark.root
def test_load_refuses_python_object_tags(conf_dir):
    path = write_config(conf_dir, "images: !!python/object/apply:os.system ['touch /tmp/pwned']\n")
    assert "not valid YAML" in load_error(path)


@pytest.mark.root
def test_load_empty_file(conf_dir):
    assert "(top level): must be a mapping" in load_error(write_config(conf_dir, ""))


@pytest.mark.root
@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o620, 0o602])
def test_load_refuses_file_writable_by_group_or_others(conf_dir, mode):
    path = write_config(conf_dir, mode=mode)
    assert load_error(path) == f"{path}: insecure: file is writable by group or others (mode {mode:04o})"


@pytest.mark.root
def test_read_only_and_private_files_are_fine(conf_dir):
    assert config.load(str(write_config(conf_dir, mode=0o400))).network == "none"


@pytest.mark.root
def test_load_refuses_file_not_owned_by_root(conf_dir):
    path = write_config(conf_dir)
    os.chown(path, 65534, 65534)
    assert load_error(path) == f"{path}: insecure: file is owned by uid 65534, not root"


@pytest.mark.root
@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777, 0o1777])
def test_load_refuses_parent_writable_by_group_or_others(conf_dir, mode):
    path = write_config(conf_dir)
    os.chmod(conf_dir.parent, mode)
    assert load_error(path).startswith(f"{conf_dir.parent}: insecure: directory is writable by group or others")


@pytest.mark.root
def test_load_refuses_parent_not_owned_by_root(conf_dir):
    path = write_config(conf_dir)
    os.chown(conf_dir, 1000, 0)
    assert load_error(path) == f"{conf_dir}: insecure: directory is owned by uid 1000, not root"


@pytest.mark.root
def test_load_refuses_symlinked_file(conf_dir):
    real = write_config(conf_dir)
    link = conf_dir / "link.yaml"
    link.symlink_to(real)
    assert load_error(link).startswith(f"{link}: cannot open safely")


@pytest.mark.root
def test_load_refuses_symlinked_directory(conf_dir):
    path = write_config(conf_dir)
    link = conf_dir.parent / "socker-link"
    link.symlink_to(conf_dir)
    assert load_error(link / path.name).startswith(f"{link}: cannot open safely")


@pytest.mark.root
def test_load_refuses_a_directory(conf_dir):
    (conf_dir / "socker.yaml").mkdir()
    assert load_error(conf_dir / "socker.yaml").endswith("not a regular file")


@pytest.mark.root
def test_load_refuses_a_fifo_without_blocking(conf_dir):
    os.mkfifo(conf_dir / "socker.yaml", 0o644)
    assert load_error(conf_dir / "socker.yaml").endswith("not a regular file")


@pytest.mark.root
def test_load_refuses_a_file_as_a_directory(conf_dir):
    path = write_config(conf_dir)
    assert "cannot open safely" in load_error(path / "socker.yaml")


@pytest.mark.root
def test_load_refuses_a_file_over_one_mebibyte(conf_dir):
    path = write_config(conf_dir, "images: [busybox]\n" + "#" * (1 << 20))
    assert load_error(path) == f"{path}: larger than {1 << 20} bytes"


@pytest.mark.root
def test_a_file_of_exactly_one_mebibyte_is_read(conf_dir):
    head = "images: [busybox]\n"
    path = write_config(conf_dir, head + "#" * ((1 << 20) - len(head)))
    assert spelt(config.load(str(path)).images) == ("docker.io/library/busybox:latest",)


@pytest.mark.root
def test_load_missing_file(conf_dir):
    assert load_error(conf_dir / "absent.yaml") == f"{conf_dir / 'absent.yaml'}: not found"


@pytest.mark.parametrize("path", ["etc/socker/socker.yaml", "/", "", "/etc/../etc/socker/socker.yaml"])
def test_load_refuses_paths_that_are_not_plain_absolute(path):
    assert load_error(path).endswith("not an absolute path")


def test_mpi_settings():
    c = config.from_document({**MINIMAL, "environment_prefixes": ["OMPI_", "PMIX_"]})
    assert c.environment_prefixes == ("OMPI_", "PMIX_")
    assert config.from_document(MINIMAL).environment_prefixes == ()
    for bad in ({"environment_prefixes": ["OMPI-"]}, {"environment_prefixes": "OMPI_"}):
        with pytest.raises(config._Invalid):
            config.from_document({**MINIMAL, **bad})


# --- registries and namespaces -------------------------------------------------------------------

REGISTRY = "registry.example.org:5443"


def test_registries_and_namespaces():
    c = from_document({
        "registries": [{"host": REGISTRY, "credentials": "/etc/socker/registry.yaml", "ca": "/etc/socker/ca.crt",
                        "timeout": 5},
                       {"host": "ghcr.io"}],
        "images": [f"{REGISTRY}/bio/*", f"{REGISTRY}/bio/bowtie:2", "ghcr.io/org/team/*", "busybox"],
    })
    assert c.registries == (config.Registry(REGISTRY, "/etc/socker/registry.yaml", "/etc/socker/ca.crt", 5),
                            config.Registry("ghcr.io", None, None, 60))
    assert c.namespaces == (f"{REGISTRY}/bio", "ghcr.io/org/team")
    assert spelt(c.images) == (f"{REGISTRY}/bio/bowtie:2", "docker.io/library/busybox:latest")


def test_no_registries_by_default():
    c = from_document(MINIMAL)
    assert (c.registries, c.namespaces) == ((), ())


@pytest.mark.parametrize("document, key, words", [
    ({"registries": [{"host": REGISTRY}], "images": [f"{REGISTRY}/*"]}, "images[0]", "top level"),
    ({"registries": [{"host": "localhost", "insecure": True}], "images": ["localhost/*"]}, "images[0]", "top level"),
    ({"images": ["docker.io/*"]}, "images[0]", "top level"),
    ({"images": [f"{REGISTRY}/bio/*"]}, "images[0]", "not listed in registries"),
    ({"registries": [{"host": "ghcr.io"}], "images": [f"{REGISTRY}/bio/*"]}, "images[0]", "not listed"),
    ({"images": ["bio/*"]}, "images[0]", "registry docker.io, which is not listed"),
    ({"registries": [{"host": REGISTRY}], "images": [f"{REGISTRY}/bio/*/x"]}, "images[0]", "invalid"),
    ({"registries": [{"host": REGISTRY}], "images": [f"{REGISTRY}/bio/b*"]}, "images[0]", "invalid"),
    ({"registries": [{"host": REGISTRY}], "images": [f"{REGISTRY}/bio/*:latest"]}, "images[0]", "invalid"),
    ({"registries": [{"host": REGISTRY}], "images": [f"{REGISTRY}/Bio/*"]}, "images[0]", "invalid"),
    ({"registries": [{"host": REGISTRY}], "images": [f"{REGISTRY}/../*"]}, "images[0]", "invalid"),
    ({"registries": [{"host": REGISTRY}], "images": ["*"]}, "images[0]", "invalid"),
    ({"registries": [{"host": f"{REGISTRY}/bio"}], "images": []}, "registries[0].host", "host[:port]"),
    ({"registries": [{"host": f"https://{REGISTRY}"}], "images": []}, "registries[0].host", "host[:port]"),
    ({"registries": [{"host": "Registry.example.org"}], "images": []}, "registries[0].host", "host[:port]"),
    ({"registries": [{"host": "registry"}], "images": []}, "registries[0].host", "host[:port]"),
    ({"registries": [{"host": ""}], "images": []}, "registries[0].host", "non-empty string"),
    ({"registries": [{"host": REGISTRY}, {"host": REGISTRY}], "images": []}, "registries[1].host", "twice"),
    ({"registries": [{"host": REGISTRY, "credentials": "registry.yaml"}], "images": []},
     "registries[0].credentials", "absolute path"),
    ({"registries": [{"host": REGISTRY, "ca": "/etc/../ca.crt"}], "images": []}, "registries[0].ca", "absolute path"),
    ({"registries": [{"host": REGISTRY, "timeout": 0}], "images": []}, "registries[0].timeout", "1 to 3600"),
    ({"registries": [{"host": REGISTRY, "timeout": "60"}], "images": []}, "registries[0].timeout", "1 to 3600"),
    ({"registries": [{"host": REGISTRY, "timeout": True}], "images": []}, "registries[0].timeout", "1 to 3600"),
    ({"registries": [{"host": REGISTRY, "password": "x"}], "images": []}, "registries[0].password", "unknown key"),
    ({"registries": [{"host": REGISTRY, "insecure": "yes"}], "images": []}, "registries[0].insecure", "true or false"),
    ({"registries": [{"host": REGISTRY, "insecure": True, "credentials": "/etc/socker/r.yaml"}], "images": []},
     "registries[0]", "an insecure registry gets no credentials"),
    ({"registries": [{"host": "localhost:5000"}], "images": []}, "registries[0]", "without verified TLS"),
    ({"registries": [{"host": "127.0.0.1"}], "images": []}, "registries[0]", "without verified TLS"),
    ({"registries": [{"host": "127.1.2.3:5000"}], "images": []}, "registries[0]", "without verified TLS"),
    ({"registries": [{"credentials": "/x"}], "images": []}, "registries[0].host", "missing"),
    ({"registries": {"host": REGISTRY}, "images": []}, "registries", "must be a list"),
])
def test_invalid_registries_and_namespaces(document, key, words):
    found_key, reason = invalid(document)
    assert found_key == key and words in reason, (found_key, reason)


def write_credentials(conf_dir, text, mode=0o600):
    path = conf_dir / "registry.yaml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def credentials_error(path):
    with pytest.raises(ConfigError) as e:
        config.load_credentials(str(path))
    message = str(e.value)
    assert "\n" not in message and "s3cret" not in message
    return message


@pytest.mark.root
def test_credentials(conf_dir):
    path = write_credentials(conf_dir, "username: puller\npassword: 's3cret:with: colons'\n")
    credentials = config.load_credentials(str(path))
    assert (credentials.username, credentials.password) == ("puller", "s3cret:with: colons")
    assert "s3cret" not in repr(credentials)


@pytest.mark.root
@pytest.mark.parametrize("mode, words", [
    (0o640, "readable by group or others (mode 0640); it must be 0600 or stricter"),
    (0o604, "readable by group or others (mode 0604)"),
    (0o610, "executable by group or others (mode 0610)"),
    (0o620, "writable by group or others (mode 0620)"),
    (0o644, "readable by group or others"),
])
def test_credentials_root_alone_may_read(conf_dir, mode, words):
    path = write_credentials(conf_dir, "username: puller\npassword: s3cret\n", mode)
    message = credentials_error(path)
    assert message.startswith(f"{path}: insecure: file is ") and words in message, message


@pytest.mark.root
@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_credentials_may_be_stricter(conf_dir, mode):
    path = write_credentials(conf_dir, "username: puller\npassword: s3cret\n", mode)
    assert config.load_credentials(str(path)).password == "s3cret"


@pytest.mark.root
@pytest.mark.parametrize("text, words", [
    ("username: puller\n", "password: missing"),
    ("password: s3cret\n", "username: missing"),
    ("username: puller\npassword: s3cret\ntoken: s3cret\n", "token: unknown key"),
    ("username: puller\npassword: 12345\n", "password: must be a non-empty string"),
    ("username: puller\npassword: ''\n", "password: must be a non-empty string"),
    ("s3cret\n", "(top level): must be a mapping"),
    ("username: puller\npassword: [s3cret\n", "not valid YAML at line"),
])
def test_credentials_files_that_are_not_right_say_so_and_nothing_of_the_secret(conf_dir, text, words):
    path = write_credentials(conf_dir, text)
    assert words in credentials_error(path)


@pytest.mark.root
def test_credentials_file_owned_by_another_user(conf_dir):
    path = write_credentials(conf_dir, "username: puller\npassword: s3cret\n")
    os.chown(path, 1000, 0)
    assert "owned by uid 1000, not root" in credentials_error(path)


# --- the keys' table, and the docs that must say what it says ---------------------------------------

ROOT = os.path.join(os.path.dirname(__file__), "..")


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def parent(key):
    return key.name.rpartition(".")[0].removesuffix("[]")


def row_name(key):
    """The README row that documents `key`: its own, or for a key inside a list's items or inside a
    section of several keys, the row of that list or section. A section of one key has no row (None);
    its key's is dotted (engine.socket)."""
    def inside(name):
        return [k for k in config.KEYS if parent(k) == name]

    if key.check is config.SECTION and len(inside(key.name)) == 1:
        return None
    holder = parent(key)
    return key.name if not holder or len(inside(holder)) == 1 else holder


def readme_rows():
    """{key: (meaning, default)} of the README's configuration table."""
    readme = read("README.md")
    table = readme[readme.index("| key | meaning | default |"):].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([\w.]+)` \| (.*) \| (.*) \|$", table, re.MULTILINE)
    assert rows
    return {name: (meaning, default) for name, meaning, default in rows}


DOCUMENTED = [key for key in config.KEYS if row_name(key) is not None]


def test_every_key_has_a_row_in_the_readme_and_nothing_else_has_one():
    documented = {row_name(key) for key in DOCUMENTED}
    assert set(readme_rows()) == documented


@pytest.mark.parametrize("key", config.KEYS, ids=lambda key: key.name)
def test_the_readme_says_what_the_table_says(key):
    if key not in DOCUMENTED:
        return  # a section of one key: its key's row speaks for it
    meaning, default = readme_rows()[row_name(key)]
    leaf = key.name.rpartition(".")[2]
    if row_name(key) == key.name:
        assert meaning.startswith(key.doc), (meaning, key.doc)
        if key.default is config.REQUIRED:
            assert default == "required"
        elif key.default in (None, []):
            assert default.startswith("none")
        elif key.check is not config.SECTION:
            assert f"`{key.default}`" in default
    else:
        assert f"`{leaf}" in meaning
        if isinstance(key.default, (str, int)) and not isinstance(key.default, bool) and key.default is not config.REQUIRED:
            assert f"`{key.default}`" in meaning, f"README's {row_name(key)} row does not give {leaf}'s default"


def uncommented(text):
    """etc/socker.yaml with its commented examples made active (lines like `#key:` or `#  - item`)."""
    return "\n".join(line[1:] if re.match(r"#(\w|\s{2,}(- |[A-Za-z_]+:))", line) else line
                     for line in text.splitlines())


def values_at(document, name):
    """The values a document gives the dotted `name`, through lists' items."""
    found = [document]
    for part in re.split(r"\.|(?<=\])", name):
        if not part:
            continue
        if part.endswith("[]"):
            found = [item for value in found if isinstance(value, dict) for item in value.get(part[:-2]) or []]
        else:
            found = [value[part] for value in found if isinstance(value, dict) and part in value]
    return found


@pytest.mark.parametrize("key", config.KEYS, ids=lambda key: key.name)
def test_the_example_configuration_shows_every_key_and_sets_only_defaults(key):
    import yaml
    example = read("etc", "socker.yaml")
    assert values_at(yaml.safe_load(uncommented(example)), key.name), f"etc/socker.yaml does not show {key.name}"
    if isinstance(key.default, (str, int, float)) and key.default is not config.REQUIRED:
        for value in values_at(yaml.safe_load(example), key.name):
            assert value == key.default, f"etc/socker.yaml sets {key.name} to {value!r}, not its default"


def test_the_example_configuration_is_valid_with_every_example_made_active():
    import yaml
    c = from_document(yaml.safe_load(uncommented(read("etc", "socker.yaml"))))
    assert c.registries and c.namespaces and c.site_mounts and c.gpus and c.environment_prefixes


@pytest.mark.parametrize("name", sorted({row_name(key) for key in DOCUMENTED}))
def test_the_manual_names_every_row_of_the_table(name):
    manual = read("packaging", "socker.1")
    files = manual[manual.index(".SH FILES"):manual.index(".SH EXAMPLES")]
    assert re.search(rf"\b{re.escape(name)}\b", files), f"socker.1's FILES does not name {name}"


# --- what a hostile or careless file holds ----------------------------------------------------------

@pytest.mark.root
@pytest.mark.parametrize("text, words", [
    ("images: [busybox]\nimages: [evil/busybox]\n", "line 2: key 'images' is given twice"),
    ("images: [busybox]\noutside_jobs: {pids: 64, pids: 1000000}\n", "key 'pids' is given twice"),
    ("base: &b {pids: 64}\nimages: [busybox]\ninside_jobs:\n  <<: *b\n", "merge keys"),
    ("images: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 32"),
    ("images: " + "[" * 200_000 + "\n", "nested deeper than 32"),
    ("images: [busybox]\n" + "".join("  " * i + f"k{i}:\n" for i in range(40)), "nested deeper"),
])
def test_a_file_socker_does_not_take_is_one_line_naming_the_line_and_why(conf_dir, text, words):
    message = load_error(write_config(conf_dir, text))
    assert words in message and "\n" not in message, message


@pytest.mark.parametrize("document, key, reason", [
    ({**MINIMAL, "engine": {"socket": "/run/docker\0.sock"}}, "engine.socket", "control characters"),
    ({**MINIMAL, "volumes": ["/scratch\n/etc"]}, "volumes[0]", "control characters"),
    ({**MINIMAL, "outside_jobs": {"memory": "\u00b2G"}}, "outside_jobs.memory", "size"),  # a digit to isdigit()
    ({**MINIMAL, "outside_jobs": {"memory": "\u0662G"}}, "outside_jobs.memory", "size"),  # Arabic-Indic two
    ({**MINIMAL, "outside_jobs": {"memory": "99999999999999999999G"}}, "outside_jobs.memory", "at most 1024T"),
    ({**MINIMAL, "outside_jobs": {"memory": 1 << 60}}, "outside_jobs.memory", "at most 1024T"),
    ({**MINIMAL, "outside_jobs": {"pids": 10 ** 23}}, "outside_jobs.pids", "from 16 to 4194304"),
    ({**MINIMAL, "inside_jobs": {"pids": 4194305}}, "inside_jobs.pids", "from 16 to 4194304"),
])
def test_values_no_engine_or_kernel_could_take_are_refused_by_name(document, key, reason):
    found_key, found_reason = invalid(document)
    assert found_key == key and reason in found_reason, (found_key, found_reason)


def test_the_largest_values_allowed_are_taken():
    c = from_document({**MINIMAL, "outside_jobs": {"memory": "1024T", "pids": 4194304}})
    assert (c.outside_jobs.memory_bytes, c.outside_jobs.pids) == (1024 << 40, 4194304)
