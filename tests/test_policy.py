import pytest

from helpers import CONFIG, JOB, SITE_MOUNT, authorize_run, make_config, make_identity
from socker.config import SiteMount
from socker import config, imageref, policy
from socker.errors import ConfigError, HostPathError, PolicyError, UsageError
from socker.model import ContainerSpec, Mount

IMAGE = "busybox:1.36"
HOME = Mount("/home/alice", "/home/alice", False)


def refused(error, *args, **kwargs):
    with pytest.raises(error) as e:
        authorize_run(*args, **kwargs)
    return str(e.value)


def test_plain_run():
    assert authorize_run(IMAGE, "id", "-u") == ContainerSpec(
        image=imageref.parse("docker.io/library/busybox:1.36"), command=("id", "-u"), uid=1000, gid=1000, groups=(100, 2000),
        env=("HOME=/home/alice", "USER=alice", "LOGNAME=alice"), mounts=(HOME,), workdir="/home/alice",
        interactive=False, tty=False, network="none", labels={"socker": "1", "socker.uid": "1000"},
        limits=CONFIG.outside_jobs)


def test_spec_carries_the_callers_ids_and_the_configured_network():
    bob = make_identity(uid=1234, gid=99, groups=(7, 8, 9), name="bob", home="/home/bob")
    spec = authorize_run("-it", IMAGE, identity=bob, config=make_config(network="host"), cwd="/home/bob")
    assert (spec.uid, spec.gid, spec.groups, spec.network) == (1234, 99, (7, 8, 9), "host")
    assert (spec.interactive, spec.tty) == (True, True)
    assert spec.labels == {"socker": "1", "socker.uid": "1234"}
    assert spec.mounts == (Mount("/home/bob", "/home/bob", False),)


def test_root_is_refused():
    assert "not run containers for root" in refused(PolicyError, IMAGE, identity=make_identity(uid=0, gid=0))


@pytest.mark.parametrize("path, directory, expected", [
    ("/scratch", "/scratch", True), ("/scratch/a/b", "/scratch", True), ("/scratch", "/", True),
    ("/scratch2", "/scratch", False), ("/scratchy/a", "/scratch", False), ("/scratc", "/scratch", False),
    ("/", "/scratch", False), ("//scratch", "/scratch", False), ("/home/alice2", "/home/alice", False),
])
def test_is_within_compares_whole_components(path, directory, expected):
    assert policy.is_within(path, directory) is expected


def test_inside_a_job_the_job_binds_and_is_labelled():
    spec = authorize_run(IMAGE, job=JOB)
    assert spec.limits is None
    assert spec.labels == {"socker": "1", "socker.uid": "1000", "socker.job": "4242"}


def test_outside_jobs_can_be_refused():
    no_outside = make_config(outside_jobs=None)
    assert "only inside a batch job" in refused(PolicyError, IMAGE, config=no_outside)
    assert authorize_run(IMAGE, config=no_outside, job=JOB).limits is None


# --- images ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("image, canonical", [
    ("socker-test/busybox:latest", "docker.io/socker-test/busybox:latest"),
    ("socker-test/busybox", "docker.io/socker-test/busybox:latest"),
    ("docker.io/socker-test/busybox:latest", "docker.io/socker-test/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"),
])
def test_allowed_images(image, canonical):
    assert str(authorize_run(image).image) == canonical


@pytest.mark.parametrize("image", [
    "busybox", "busybox:latest", "busybox:1.37", "busybox:1.36.1", "socker-test/busybox:latest2",
    "socker-test/busybox2", "socker-test/busybox:Latest", "evil/socker-test/busybox",
    "index.docker.io/socker-test/busybox:latest", "localhost/socker-test/busybox:latest",
    "socker-test/busybox@sha256:" + "0" * 64, "socker-test/busybox:latest@sha256:" + "0" * 64,
])
def test_images_not_on_the_list_are_refused(image):
    assert "is not allowed" in refused(PolicyError, image)


@pytest.mark.parametrize("args", [
    ["--", "-busybox"], ["--", "--privileged"], ["--", "-"], ["-"], ["busybox:1.36 "], ["busybox:1.36\n"],
    ["BusyBox:1.36"], [" busybox:1.36"], [""],
])
def test_malformed_images_are_usage_errors(args):
    assert "invalid image reference" in refused(UsageError, *args)


# --- user volumes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("volume, mount", [
    ("/home/alice/data:/data", Mount("/home/alice/data", "/data", False)),
    ("/home/alice:/h:ro", Mount("/home/alice", "/h", True)),
    ("/home/alice/in.txt:/in.txt:ro", Mount("/home/alice/in.txt", "/in.txt", True)),
    ("/scratch:/s:ro", Mount("/scratch", "/s", True)),
    ("/scratch/alice/run:/run-data:rw", Mount("/scratch/alice/run", "/run-data", False)),
    ("/scratch/alice/../bob:/b", Mount("/scratch/bob", "/b", False)),
    ("/home/alice/link-scratch/x:/x", Mount("/scratch/alice/x", "/x", False)),  # real path is mounted
    ("/scratch/alice/link-home/sub:/x", Mount("/home/alice/sub", "/x", False)),
    ("/scratch/alice/link-up:/x:ro", Mount("/scratch", "/x", True)),
    ("/home/alice/data:/procs", Mount("/home/alice/data", "/procs", False)),
    ("/home/alice/data:/devices", Mount("/home/alice/data", "/devices", False)),
    ("/home/alice/data:/etcetera", Mount("/home/alice/data", "/etcetera", False)),
    ("/home/alice/data:/run", Mount("/home/alice/data", "/run", False)),
    ("/home/alice/data:/var/run/docker.sock", Mount("/home/alice/data", "/var/run/docker.sock", False)),
])
def test_volumes_under_home_or_a_prefix(volume, mount):
    assert authorize_run("-v", volume, IMAGE).mounts == (HOME, mount)


@pytest.mark.parametrize("source, shown", [
    ("/scratch2/alice", "/scratch2/alice"),
    ("/scratchy", "/scratchy"),
    ("/scratchy/alice", "/scratchy/alice"),
    ("/home/bob", "/home/bob"),
    ("/home/alice/../bob", "/home/alice/../bob (which is /home/bob)"),
    ("/scratch/../etc", "/scratch/../etc (which is /etc)"),
    ("/home/alice/link-etc", "/home/alice/link-etc (which is /etc)"),
    ("/home/alice/link-etc/shadow.txt", "/home/alice/link-etc/shadow.txt (which is /etc/shadow.txt)"),
    ("/scratch/alice/link-scratch2", "/scratch/alice/link-scratch2 (which is /scratch2/alice)"),
    ("/scratch/alice/link-bob", "/scratch/alice/link-bob (which is /home/bob)"),
    ("/scratch/alice/link-root", "/scratch/alice/link-root (which is /)"),
    ("/", "/"),
    ("/etc", "/etc"),
    ("/root", "/root"),
    ("/var", "/var"),
    ("/tmp", "/tmp"),
])
def test_volumes_outside_are_refused(source, shown):
    message = refused(PolicyError, "-v", f"{source}:/data", IMAGE)
    assert message == f"volume source {shown} is outside the directories you may mount"


@pytest.mark.parametrize("source", ["/home/alice/missing", "/scratch/missing/x", "/nonexistent", "/usr/bin"])
def test_missing_volume_sources(source):
    assert "does not exist" in refused(HostPathError, "-v", f"{source}:/data", IMAGE)


def test_volume_that_is_neither_file_nor_directory():
    message = refused(HostPathError, "-v", "/home/alice/fifo:/data", IMAGE)
    assert "not a directory or a regular file" in message


PROTECTED = ["/", "/proc", "/proc/self/fd/3", "/proc/1/root", "/sys", "/sys/fs/cgroup", "/dev", "/dev/shm",
             "/dev/sda", "/etc", "/etc/passwd", "/etc/group", "/etc/ld.so.preload"]
NOT_NORMALISED = ["/a/../etc", "/a/..", "/a//b", "//etc", "//", "/etc/", "/data/", "/a/.", "/./etc"]


@pytest.mark.parametrize("target", PROTECTED)
def test_protected_volume_targets(target):
    assert "is not allowed" in refused(PolicyError, "-v", f"/home/alice/data:{target}", IMAGE)


@pytest.mark.parametrize("target", NOT_NORMALISED)
def test_volume_targets_must_be_normalised(target):
    assert "must be a normalised absolute path" in refused(UsageError, "-v", f"/home/alice/data:{target}", IMAGE)


@pytest.mark.parametrize("args", [
    ["-v", "/home/alice/a:/data", "-v", "/scratch/alice/x:/data"],
    ["-v", "/scratch/alice/x:/home/alice"],  # the home mount's place
    ["-v", "/scratch/alice/x:/d", "-v", "/scratch/alice/x:/d:ro"],
])
def test_duplicate_targets_are_refused(args):
    assert "same destination" in refused(PolicyError, *args, IMAGE)


@pytest.mark.parametrize("volume", ["/scratch:/s", "/scratch/alice/link-up:/x"])
def test_a_directory_the_caller_cannot_write_is_mounted_read_only_or_not_at_all(volume):
    # The engine, as root, would create mount points and working directories inside it.
    assert "cannot write; mount it read-only" in refused(PolicyError, "-v", volume, IMAGE)
    assert authorize_run("-v", volume + ":ro", IMAGE).mounts[-1].read_only


@pytest.mark.parametrize("args, inner, outer", [
    (["-v", "/scratch/alice/x:/home/alice/x"], "/home/alice/x", "/home/alice"),
    (["-v", "/scratch/alice/x:/home/alice/link-etc/group"], "/home/alice/link-etc/group", "/home/alice"),
    (["-v", "/scratch/alice:/s", "-v", "/home/alice/a:/s/bob/new"], "/s/bob/new", "/s"),
    (["-v", "/scratch/alice/x:/s/deep", "-v", "/home/alice/a:/s:ro"], "/s/deep", "/s"),
])
def test_nested_destinations_are_refused(args, inner, outer):
    message = refused(PolicyError, *args, IMAGE)
    assert f"mount destination {inner} lies inside another mount's, {outer}" in message


def test_a_home_shown_by_a_site_mount_is_not_mounted_again():
    config = make_config(site_mounts=(SiteMount("/home/alice", "/home/alice", False),))
    spec = authorize_run(IMAGE, config=config)
    assert spec.mounts == (Mount("/home/alice", "/home/alice", False),)
    assert spec.workdir == "/home/alice"


def test_a_home_shown_read_only_by_a_site_mount_is_mounted_writable_inside_it():
    site = SiteMount("/home", "/home", True)
    spec = authorize_run(IMAGE, config=make_config(site_mounts=(site,)))
    assert spec.mounts == (Mount("/home", "/home", True), HOME)
    # Only the home may lie inside a site mount; anything else is still refused.
    message = refused(PolicyError, "-v", "/scratch/alice/x:/home/alice2", IMAGE, config=make_config(site_mounts=(site,)))
    assert "lies inside another mount's, /home" in message


@pytest.mark.parametrize("destination, refused_", [("/var/lib", True), ("/var/lib/data", False), ("/data", False),
                                                   ("/var/lib/data/sub", False), ("/var/lib/dat", False)])
def test_an_image_volume_inside_a_mount_is_refused(destination, refused_):
    spec = authorize_run("-v", f"/scratch/alice/x:{destination}", IMAGE)
    if refused_:
        with pytest.raises(PolicyError, match="the image's volume /var/lib/data lies inside the mount destination"):
            policy.refuse_mounts_holding_image_volumes(spec, {"/var/lib/data": {}})
    else:
        policy.refuse_mounts_holding_image_volumes(spec, {"/var/lib/data": {}})


def test_duplicate_of_a_site_mount_target_is_refused():
    config = make_config(site_mounts=(SITE_MOUNT,))
    assert "same destination /software" in refused(PolicyError, "-v", "/scratch/alice/x:/software", IMAGE, config=config)


def test_same_source_twice_at_different_targets_is_fine():
    spec = authorize_run("-v", "/scratch/alice/x:/a", "-v", "/scratch/alice/x:/b:ro", IMAGE)
    assert spec.mounts == (HOME, Mount("/scratch/alice/x", "/a", False), Mount("/scratch/alice/x", "/b", True))


# --- working directory ----------------------------------------------------------------------------

@pytest.mark.parametrize("workdir", PROTECTED + ["/proc/self/fd/7", "/proc/self/cwd", "/etc/ssl"])
def test_protected_workdirs(workdir):
    assert "is not allowed" in refused(PolicyError, "-w", workdir, IMAGE)


@pytest.mark.parametrize("workdir", NOT_NORMALISED + ["relative", "./x", "~/x"])
def test_workdirs_must_be_normalised(workdir):
    assert "must be a normalised absolute path" in refused(UsageError, "-w", workdir, IMAGE)


def test_empty_workdir_is_refused():
    refused(UsageError, "--workdir=", IMAGE, cwd="/tmp")


@pytest.mark.parametrize("cwd", ["/tmp", "/home/alice", None])
def test_workdir_given_is_used_and_nothing_more_is_mounted(cwd):
    spec = authorize_run("-w", "/work", IMAGE, cwd=cwd)
    assert (spec.workdir, spec.mounts) == ("/work", (HOME,))


def test_cwd_under_a_prefix_is_mounted_even_with_a_workdir():
    spec = authorize_run("-w", "/work", IMAGE, cwd="/scratch/alice")
    assert (spec.workdir, spec.mounts) == ("/work", (HOME, Mount("/scratch/alice", "/scratch/alice", False)))


# --- current directory ------------------------------------------------------------------------------

@pytest.mark.parametrize("cwd", ["/home/alice", "/home/alice/proj/deep"])
def test_cwd_in_home_is_the_workdir_without_another_mount(cwd):
    spec = authorize_run(IMAGE, cwd=cwd)
    assert (spec.workdir, spec.mounts) == (cwd, (HOME,))


@pytest.mark.parametrize("cwd, read_only", [("/scratch", True), ("/scratch/alice/run", False)])
def test_cwd_under_a_prefix_is_mounted_read_only_unless_the_caller_may_write_it(cwd, read_only):
    spec = authorize_run(IMAGE, cwd=cwd)
    assert (spec.workdir, spec.mounts) == (cwd, (HOME, Mount(cwd, cwd, read_only)))


@pytest.mark.parametrize("cwd", ["/tmp", "/scratch2/alice", "/scratchy", "/home/bob", "/", "/etc"])
def test_cwd_outside_is_refused_without_workdir(cwd):
    assert f"current directory {cwd} is outside" in refused(PolicyError, IMAGE, cwd=cwd)


def test_unreachable_cwd_needs_a_workdir():
    assert "cannot be resolved" in refused(HostPathError, IMAGE, cwd=None)


def test_cwd_inside_a_volume_maps_through_it():
    spec = authorize_run("-v", "/scratch/alice/data:/data", IMAGE, cwd="/scratch/alice/data/sub")
    assert spec.workdir == "/data/sub"
    assert spec.mounts == (HOME, Mount("/scratch/alice/data", "/data", False))


def test_cwd_maps_through_the_deepest_mount():
    spec = authorize_run("-v", "/home/alice/proj:/proj", IMAGE, cwd="/home/alice/proj/x")
    assert spec.workdir == "/proj/x"


def test_cwd_inside_a_site_mount_maps_to_its_target():
    spec = authorize_run(IMAGE, config=make_config(site_mounts=(SITE_MOUNT,)), cwd="/cluster/software/bin")
    assert spec.workdir == "/software/bin"


def test_cwd_under_a_prefix_is_still_not_mounted_over_a_protected_path():
    config = make_config(volume_prefixes=("/scratch", "/etc"))
    assert "is not allowed" in refused(PolicyError, IMAGE, config=config, cwd="/etc/ssl")


def test_cwd_mount_colliding_with_a_volume_target_is_refused():
    args = ("-v", "/scratch/alice/a:/scratch/alice/b", IMAGE)
    assert "same destination" in refused(PolicyError, *args, cwd="/scratch/alice/b")


# --- home and site mounts ------------------------------------------------------------------------

def test_home_reached_through_a_symlink_is_mounted_at_its_own_path():
    alice = make_identity(home="/home/alice/link-scratch")
    spec = authorize_run(IMAGE, identity=alice, cwd="/scratch/alice/x")
    assert spec.mounts == (Mount("/scratch/alice", "/home/alice/link-scratch", False),)
    assert spec.workdir == "/home/alice/link-scratch/x"


def test_missing_home_is_not_mounted_and_admits_nothing():
    alice = make_identity(home="/home/missing-alice")
    spec = authorize_run(IMAGE, identity=alice, cwd="/scratch/alice")
    assert spec.mounts == (Mount("/scratch/alice", "/scratch/alice", False),)
    assert "HOME=/home/missing-alice" in spec.env


def test_a_home_of_root_is_not_mounted():
    spec = authorize_run("-w", "/w", IMAGE, identity=make_identity(home="/"), cwd=None)
    assert spec.mounts == ()


def test_a_home_of_root_admits_no_volume():
    refused(PolicyError, "-v", "/etc:/data", IMAGE, identity=make_identity(home="/"), cwd="/scratch")


def test_site_mounts_come_first_with_their_own_target_and_mode():
    config = make_config(site_mounts=(SITE_MOUNT, SiteMount("/scratch/alice/link-home", "/h", False),
                                      SiteMount("/export/data", "/export/data", True)))
    assert authorize_run(IMAGE, config=config).mounts == (
        Mount("/cluster/software", "/software", True), Mount("/home/alice", "/h", False),
        Mount("/export/data", "/export/data", True), HOME)


def test_missing_site_mount_source_is_an_error():
    config = make_config(site_mounts=(SiteMount("/cluster/missing", "/m", True),))
    assert "site mount /cluster/missing does not exist" in refused(ConfigError, IMAGE, config=config)


def test_site_mount_source_is_not_a_permitted_root():
    config = make_config(site_mounts=(SITE_MOUNT,))
    assert "outside" in refused(PolicyError, "-v", "/cluster/software/bin:/b", IMAGE, config=config)


# --- environment -------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, caller_env, expected", [
    ([], {}, ["HOME=/home/alice", "USER=alice", "LOGNAME=alice"]),
    (["-e", "OMP_NUM_THREADS"], None, ["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "OMP_NUM_THREADS=4"]),
    (["-e", "NOT_SET"], None, ["HOME=/home/alice", "USER=alice", "LOGNAME=alice"]),
    (["-e", "A=1", "-e", "B=x=y\nz", "-e", "C="], {},
     ["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "A=1", "B=x=y\nz", "C="]),
    (["-e", "A=1", "-e", "A=2"], {}, ["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "A=2"]),
    (["-e", "HOME=/data"], {}, ["HOME=/data", "USER=alice", "LOGNAME=alice"]),
    (["-t"], None, ["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "TERM=xterm-256color"]),
    (["-t"], {}, ["HOME=/home/alice", "USER=alice", "LOGNAME=alice"]),
    (["-i"], None, ["HOME=/home/alice", "USER=alice", "LOGNAME=alice"]),
    (["-e", "TERM"], None, ["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "TERM=xterm-256color"]),
])
def test_environment(args, caller_env, expected):
    kwargs = {} if caller_env is None else {"caller_env": caller_env}
    assert list(authorize_run(*args, IMAGE, **kwargs).env) == expected


def test_caller_variables_are_not_passed_unless_asked_for():
    names = {entry.partition("=")[0] for entry in authorize_run("-it", IMAGE).env}
    assert names == {"HOME", "USER", "LOGNAME", "TERM"}


def test_launcher_environment_passes_only_with_the_admins_prefixes():
    launcher = {"OMPI_COMM_WORLD_RANK": "3", "PMIX_RANK": "3", "SLURM_PROCID": "3", "LD_PRELOAD": "/x.so",
                "OMPI_BAD-NAME": "x"}
    plain = authorize_run(IMAGE, caller_env=launcher)
    assert not any(e.startswith(("OMPI_", "PMIX_", "SLURM_", "LD_")) for e in plain.env)
    mpi = authorize_run(IMAGE, caller_env=launcher, config=make_config(environment_prefixes=("OMPI_", "PMIX_")))
    assert {"OMPI_COMM_WORLD_RANK=3", "PMIX_RANK=3"} <= set(mpi.env)
    assert not any(e.startswith(("SLURM_", "LD_", "OMPI_BAD")) for e in mpi.env)




# ---------------------------------------------------------------- the review's findings

def test_at_most_the_documented_number_of_volumes():
    volumes = [a for i in range(policy.MAX_VOLUMES) for a in ("-v", f"/scratch/alice:/v{i}:ro")]
    assert len(authorize_run(*volumes, "busybox:1.36").mounts) == policy.MAX_VOLUMES + 1  # and the home
    with pytest.raises(PolicyError, match=f"at most {policy.MAX_VOLUMES} volumes"):
        authorize_run(*volumes, "-v", "/scratch/alice:/one-more:ro", "busybox:1.36")


@pytest.mark.parametrize("where, changes", [
    ("your home directory", {"identity": make_identity(home="/home/al\udcffice")}),
    ("your current directory", {"cwd": "/home/alice/\udcfe"}),
    ("environment variable OMPI_X", {"caller_env": {"OMPI_X": "\udcff"},
                                     "config": make_config(environment_prefixes=("OMPI_",))}),
    ("environment variable COPY", {"caller_env": {"COPY": "a\udcfeb"}, "args": ("-e", "COPY")}),
    ("environment variable TERM", {"caller_env": {"TERM": "x\udcff"}, "args": ("-t",)}),
])
def test_text_the_engine_would_read_otherwise_is_refused(where, changes):
    args = changes.pop("args", ())
    with pytest.raises(UsageError, match=f"{where} is not valid UTF-8"):
        authorize_run(*args, "busybox:1.36", "true", **changes)


def test_the_callers_resource_limits_go_to_the_container():
    limits = (("nofile", 64, 64), ("stack", -1, -1))
    assert authorize_run("busybox:1.36", identity=make_identity(limits=limits)).ulimits == limits


# --- registries and namespaces --------------------------------------------------------------------

REGISTRY = "registry.example.org:5443"
SITE = make_config(
    images=tuple(map(imageref.parse, (f"{REGISTRY}/tools/samtools:1.19", "docker.io/library/busybox:1.36",
                                      "ghcr.io/org/tool:1.0"))),
    namespaces=(f"{REGISTRY}/bio",),
    registries=(config.Registry(REGISTRY, "/etc/socker/registry.yaml", None, 60),),
)


@pytest.mark.parametrize("image", [
    f"{REGISTRY}/bio/bowtie", f"{REGISTRY}/bio/bowtie:2.5", f"{REGISTRY}/bio/bowtie@sha256:" + "0" * 64,
    f"{REGISTRY}/bio/bowtie:2.5@sha256:" + "0" * 64, f"{REGISTRY}/tools/samtools:1.19", "busybox:1.36",
])
def test_a_namespace_admits_any_tag_or_digest_below_it(image):
    assert authorize_run(image, config=SITE).image == imageref.parse(image)


@pytest.mark.parametrize("image", [
    f"{REGISTRY}/bio", f"{REGISTRY}/bio/tools/bowtie", f"{REGISTRY}/bioinformatics/bowtie", f"{REGISTRY}/bowtie",
    f"{REGISTRY}/tools/samtools:1.20", f"{REGISTRY}/tools/bcftools:1.19", "registry.example.org:5444/bio/bowtie",
    "registry.example.org/bio/bowtie", "bio/bowtie", "docker.io/bio/bowtie",
])
def test_namespace_look_alikes_are_refused(image):
    assert "is not allowed" in refused(PolicyError, image, config=SITE)


def test_the_registry_an_image_is_pulled_from_is_the_listed_one_it_names():
    assert policy.registry_for(imageref.parse(f"{REGISTRY}/bio/bowtie:2.5"), SITE) == SITE.registries[0]
    assert policy.registry_for(imageref.parse(f"{REGISTRY}/tools/samtools:1.19"), SITE) == SITE.registries[0]
    assert policy.registry_for(imageref.parse("ghcr.io/org/tool:1.0"), SITE) is None  # allowed, but never pulled
    assert policy.registry_for(imageref.parse("docker.io/library/busybox:1.36"), SITE) is None
    assert policy.registry_for(imageref.parse("registry.example.org:5444/bio/bowtie:2.5"), SITE) is None
