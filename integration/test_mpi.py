"""MPI codes in containers: `mpirun -np N socker run` and `srun --mpi=pmix -n N socker run`.

Open MPI on the host launches one socker per rank; inside each container the image's own Open
MPI (the same version, Debian's) reaches the launcher's PMIx server and the other ranks over
loopback TCP. For that the site's policy must allow what the test config below allows:
`network: host` and the launcher's OMPI_*, PMIX_*, PMI_* and SLURM_* variables (Open MPI
tells a rank started by srun from a singleton by SLURM_*).
"""

import re

import pytest

from helpers import ALICE, IMAGE, SOCKER, TEST_CONFIG, docker, run_as, sbatch, user, wait_job

MPI_IMAGE = "socker-test/mpi:latest"
ALLREDUCE = "/opt/socker-test/allreduce"
RANKS = 4
MPI_CONFIG = TEST_CONFIG.replace("network: none", "network: host") + f"""\
environment_prefixes:
  - OMPI_
  - PMIX_
  - PMI_
  - SLURM_
"""
MPI_CONFIG = MPI_CONFIG.replace(f"  - {IMAGE}\n", f"  - {IMAGE}\n  - {MPI_IMAGE}\n")
# Ranks talk over loopback TCP; PMIx keeps its job data in the client's memory (gds=hash),
# not in the launcher's shared-memory files under a host directory no container sees.
MPI_ENVIRONMENT = "export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo PMIX_MCA_gds=hash; "
CONTAINER = r"[0-9a-f]{64}"


@pytest.fixture
def mpi_policy(site_config):
    assert docker("image", "ls", "-q", MPI_IMAGE).strip(), f"{MPI_IMAGE} is missing: run integration/up"
    site_config(MPI_CONFIG)


@pytest.fixture
def output(alice_scratch):
    return alice_scratch / "mpi.out"


def run_mpi_job(launcher, output):
    script = f"{MPI_ENVIRONMENT}{launcher} {SOCKER} run {MPI_IMAGE} {ALLREDUCE} 100000; echo status=$?"
    job = sbatch(ALICE, script, "-n", str(RANKS), "-O", "--mem=2G", "-t", "5", output=output)
    wait_job(job, 240)
    return job, output.read_text()


def rank_cgroups(text):
    """{rank: memory cgroup path} from the ranks' own report."""
    found = dict(re.findall(rf"^rank (\d+) of {RANKS} cgroup \d+:memory:(\S+)$", text, re.M))
    assert sorted(found) == [str(r) for r in range(RANKS)], text
    return found


def test_mpirun_ranks_communicate_each_in_its_own_container_inside_the_job(mpi_policy, output):
    job, text = run_mpi_job(f"mpirun -np {RANKS}", output)
    assert f"allreduce ranks={RANKS} sum={RANKS * (RANKS + 1) // 2}" in text, text
    assert "status=0" in text, text
    paths = rank_cgroups(text)
    uid = user(ALICE).pw_uid
    # mpirun runs in the batch step; its ranks' containers lie below the batch task's cgroup.
    for path in paths.values():
        assert re.fullmatch(rf"/slurm_[^/]+/uid_{uid}/job_{job}/step_batch/task_0/{CONTAINER}", path), path
    assert len(set(paths.values())) == RANKS


def test_srun_pmix_ranks_communicate_each_in_its_own_task_cgroup(mpi_policy, output):
    job, text = run_mpi_job(f"srun --mpi=pmix -n {RANKS}", output)
    assert f"allreduce ranks={RANKS} sum={RANKS * (RANKS + 1) // 2}" in text, text
    assert "status=0" in text, text
    uid = user(ALICE).pw_uid
    for rank, path in rank_cgroups(text).items():
        assert re.fullmatch(rf"/slurm_[^/]+/uid_{uid}/job_{job}/step_0/task_{rank}/{CONTAINER}", path), path


def test_without_the_mpi_policy_the_launchers_variables_stay_outside(output):
    # The default test policy passes no OMPI_*/PMIX_* variable: each rank starts alone.
    result = run_as(ALICE, [SOCKER, "run", IMAGE, "sh", "-c", "env | grep -c -E '^(OMPI|PMIX)_' || true"],
                    env={"OMPI_COMM_WORLD_RANK": "3", "PMIX_RANK": "3", "PMIX_SERVER_URI4": "x"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "0"
