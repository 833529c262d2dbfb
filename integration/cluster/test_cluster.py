"""socker on a cluster of two nodes (integration/cluster/run): Slurm jobs across both, MPI between
them over the cluster link, images from the site registry pulled by each node, and what a job
that ends badly leaves on each node.

Runs as root on socker-node1 (slurmctld, slurmd, the batch steps); socker-node2 (slurmd) is
reached over ssh on the cluster link, and so is socker-node1 itself, so that both are looked at
alike (probe.py). The configuration allows the site registry's test namespace only: every image
comes from the registry through guestfwd, pulled by socker on the node that runs it. TCG makes
everything slow: the timeouts are generous.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

import cgroup_layout
import siteregistry
from gpuprobe import GPUS_SECTION, PROBE, assert_container_has_exactly, held, seen
from helpers import ALICE, SOCKER, job_state, sbatch, unique, wait_job, wait_until

NODES = ("socker-node1", "socker-node2")
LINK_NETWORK = "192.168.77.0/24"
PROBE = Path(__file__).with_name("probe.py")
BUSYBOX = siteregistry.reference("busybox")
MPI_IMAGE = siteregistry.reference("mpi-run")  # integration/cluster/run pushes it
ALLREDUCE = "/opt/socker-test/allreduce"
COUNT = 1_000_000  # longs per rank: 8 MB that must cross the link
HOG = "dd if=/dev/zero of=/dev/null bs=300M count=1"  # touches a 300 MB buffer
OOM_MESSAGE = "socker: the container was killed: the job's memory limit was reached"
CONFIG = siteregistry.socker_config(
    [siteregistry.NAMESPACE_ENTRY],
    [(siteregistry.HOST, {"credentials": siteregistry.CREDENTIALS, "timeout": 600})],
).replace("network: none", "network: host") + """\
environment_prefixes:
  - OMPI_
  - PMIX_
  - PMI_
  - SLURM_
""" + GPUS_SECTION
# The ranks talk TCP on the cluster link only (each node also has its uplink, 10.0.2.15 on both);
# PMIx keeps its job data in the client's memory, not in files of the launcher's no container sees.
MPI_ENVIRONMENT = (f"export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include={LINK_NETWORK} "
                   f"OMPI_MCA_oob_tcp_if_include={LINK_NETWORK} PMIX_MCA_gds=hash; ")


def on(node, command, input=None, timeout=300):
    """Run a shell command as root on `node` (over ssh); its stdout."""
    result = subprocess.run(["ssh", node, command], input=input, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (node, command, result.returncode, result.stderr)
    return result.stdout


def probe(node, job=None):
    return json.loads(on(node, f"python3 {PROBE} {job or ''}"))


def nothing_of(job):
    """True once neither node has a container of `job`, socker state, or a cgroup of the job."""
    for node in NODES:
        seen = probe(node, job)
        if any(c["job"] == job for c in seen["containers"]) or seen["state"] or seen["job_cgroups"]:
            return False
    return True


@pytest.fixture(scope="module", autouse=True)
def cluster_config():
    """The cluster's socker configuration, on both nodes."""
    for node in NODES:
        on(node, "umask 022; cat >/etc/socker/socker.yaml.new && mv /etc/socker/socker.yaml.new /etc/socker/socker.yaml",
           input=CONFIG)


@pytest.fixture(autouse=True)
def nothing_left_on_either_node():
    yield
    for node in NODES:
        assert wait_until(lambda: not probe(node)["containers"] and not probe(node)["state"], timeout=60, interval=2), \
            (node, probe(node))


@pytest.fixture
def output(alice_scratch):
    return alice_scratch / "job.out"


def running_per_node(job, per_node, timeout=900):
    """{node: [container]} once `per_node` containers of `job` run on each node."""
    found = {}

    def running():
        for node in NODES:
            found[node] = [c for c in probe(node)["containers"] if c["job"] == job and c["running"]]
        return all(len(found[node]) == per_node for node in NODES)
    assert wait_until(running, timeout=timeout, interval=3), (job, job_state(job), found)
    return found


def by_rank(text, socker_lines=True):
    """{rank: [line]} of `srun -l` output; without socker's own lines (pulls) if not `socker_lines`."""
    found = {}
    for line in text.splitlines():
        label = re.match(r"^\s*(\d+): (.*)$", line)
        if label and (socker_lines or not label[2].startswith("socker: ")):
            found.setdefault(int(label[1]), []).append(label[2])
    return found


def test_srun_runs_the_tasks_on_both_nodes_each_container_in_its_job_step_there(output):
    release = f"/home/{ALICE}/release-{unique()}"
    script = (f"srun -l -N2 -n4 -O {SOCKER} run {BUSYBOX} "
              f"sh -c 'hostname; while [ ! -e {release} ]; do sleep 1; done'; echo status=$?")
    job = sbatch(ALICE, script, "-N2", "-n4", "-O", "--mem=200M", "-t", "30", output=output)
    try:
        containers = running_per_node(job, 2)
        pattern = cgroup_layout.in_force().container_pattern(job, 0, r"\d+")
        paths = []
        for node, found in containers.items():
            for container in found:
                assert container["slurm"]["SLURM_NODEID"] == str(NODES.index(node)), (node, container)
                assert re.fullmatch(pattern, container["cgroup"]), (node, container)
                paths.append(container["cgroup"])
        assert len(set(paths)) == 4, paths
        ranks = {node: sorted(int(c["slurm"]["SLURM_PROCID"]) for c in found) for node, found in containers.items()}
        assert sorted(ranks["socker-node1"] + ranks["socker-node2"]) == [0, 1, 2, 3], ranks
        tasks = {node: probe(node, job)["task_cgroups"] for node in NODES}
        for node in NODES:  # the ranks' own task cgroups are there, beside the containers
            assert all(f"task_{rank}" in tasks[node] for rank in ranks[node]), (ranks, tasks)
    finally:
        for node in NODES:
            on(node, f"touch {release}")
    wait_job(job, 300)
    text = output.read_text()
    assert "status=0" in text, text
    lines = by_rank(text, socker_lines=False)
    for node, rank_list in ranks.items():
        for rank in rank_list:
            assert lines.get(rank) == [node], (rank, node, text)
    assert wait_until(lambda: nothing_of(job), timeout=120, interval=3)


def test_an_image_absent_from_both_nodes_is_pulled_once_by_each(output, published):
    image = published()
    for node in NODES:
        assert not on(node, f"docker image ls -q {siteregistry.repository_of(image.reference)}").strip(), node
    log = siteregistry.AccessLog()
    script = (f"srun -l -N2 -n6 -O {SOCKER} run {image.reference} "
              f"sh -c 'echo \"node $SLURM_NODEID $(cat {siteregistry.UNIQUE_FILE})\"'; echo status=$?")
    job = sbatch(ALICE, script, "-N2", "-n6", "-O", "--mem=200M", "-t", "30", output=output)
    try:
        wait_job(job, 1200)
        text = output.read_text()
        assert "status=0" in text, text
        found = by_rank(text, socker_lines=False)
        assert sorted(found) == list(range(6)), text
        assert sorted(line for lines in found.values() for line in lines) == \
            [f"node {n} {image.token}" for n in (0, 0, 0, 1, 1, 1)], text  # three ranks on each node
        assert log.pulls(image.reference) == 2, log.manifest_requests(image.reference)
        for node in NODES:
            assert on(node, f"docker image ls -q {siteregistry.repository_of(image.reference)}").strip(), node
    finally:
        on(NODES[1], f"docker image ls -q {siteregistry.repository_of(image.reference)} | sort -u | "
                     f"xargs -r docker rmi -f >/dev/null")


@pytest.mark.parametrize("launcher", ["srun --mpi=pmix -N2 -n4 -O", "mpirun -np 4"])
def test_mpi_ranks_on_both_nodes_reduce_over_the_cluster_link(launcher, output):
    before = {node: probe(node)["link"] for node in NODES}
    script = f"{MPI_ENVIRONMENT}{launcher} {SOCKER} run {MPI_IMAGE} {ALLREDUCE} {COUNT}; echo status=$?"
    job = sbatch(ALICE, script, "-N2", "-n4", "-O", "--mem=1G", "-t", "40", output=output)
    wait_job(job, 2400)
    text = output.read_text()
    assert "allreduce ranks=4 sum=10" in text, text
    assert "status=0" in text, text
    assert sorted(re.findall(r"^rank (\d) of 4 ", text, re.M)) == ["0", "1", "2", "3"], text
    after = {node: probe(node)["link"] for node in NODES}
    for node in NODES:  # at least one whole vector crossed the link each way, not the loopback
        for direction in ("rx", "tx"):
            moved = after[node][direction] - before[node][direction]
            assert moved >= COUNT * 8, (node, direction, moved)
    assert wait_until(lambda: nothing_of(job), timeout=120, interval=3)


def _both_nodes_clean_after(job):
    assert wait_until(lambda: nothing_of(job), timeout=180, interval=3), {node: probe(node, job) for node in NODES}
    for node in NODES:  # slurmd ran the epilog for the job on each node
        assert wait_until(lambda: probe(node, job)["epilog"], timeout=60, interval=3), (node, probe(node, job))


def test_scancel_of_a_two_node_job_leaves_nothing_on_either_node(output):
    job = sbatch(ALICE, f"srun -N2 -n2 {SOCKER} run {BUSYBOX} sleep 3000", "-N2", "-n2", "--mem=200M", "-t", "30",
                 output=output)
    running_per_node(job, 1)
    subprocess.run(["scancel", job], check=True)
    wait_job(job, 300)
    _both_nodes_clean_after(job)


def test_a_two_node_job_at_its_time_limit_leaves_nothing_on_either_node(output):
    job = sbatch(ALICE, f"srun -N2 -n2 {SOCKER} run {BUSYBOX} sleep 3000", "-N2", "-n2", "--mem=200M", "-t", "1",
                 output=output)
    running_per_node(job, 1)
    wait_job(job, 600)
    assert job_state(job) in ("TIMEOUT", "GONE")
    _both_nodes_clean_after(job)


def test_the_memory_limit_of_a_two_node_job_binds_on_each_node(output):
    script = f"srun -l -N2 -n2 sh -c '{SOCKER} run {BUSYBOX} {HOG}; echo status=$?'"
    job = sbatch(ALICE, script, "-N2", "-n2", "--mem=100M", "-t", "30", output=output)
    wait_job(job, 900)
    text = output.read_text()
    lines = by_rank(text)
    for rank in (0, 1):
        assert "status=137" in lines.get(rank, []), (rank, text)
        assert OOM_MESSAGE in lines.get(rank, []), (rank, text)
    assert wait_until(lambda: nothing_of(job), timeout=120, interval=3)


def test_a_gpu_job_on_both_nodes_gives_each_container_its_own_nodes_gpu(output):
    for node in NODES:
        on(node, f"cat >/scratch/{ALICE}/probe.sh && chown {ALICE} /scratch/{ALICE}/probe.sh", input=PROBE)
    script = (f"srun -N2 --gres=gpu:1 sh -c 'sh /scratch/{ALICE}/probe.sh host-$SLURM_NODEID; "
              f"{SOCKER} run -v /scratch/{ALICE}:/s {BUSYBOX} sh /s/probe.sh container-$SLURM_NODEID'")
    job = sbatch(ALICE, script, "-N2", "--gres=gpu:1", "--mem=200M", "-t", "30", output=output)
    wait_job(job, 900)
    text = output.read_text()
    for node_id in range(len(NODES)):
        units = held(seen(text, f"host-{node_id}")[0])
        assert len(units) == 1, text
        assert_container_has_exactly(text, units, f"container-{node_id}")
    assert wait_until(lambda: nothing_of(job), timeout=120, interval=3)
