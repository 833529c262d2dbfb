"""GPUs from the job's allocation, with Slurm's gres and the fake GPUs of integration/slurm/fake-gpus.

One suite for both cgroup layouts: on the host (cgroup v1) and in the integration/vm guest (v2),
where the engine's device filter for a container replaces the job's and socker's choice is all
that binds it. The kernel judges each device: opening a fake GPU gives ENXIO where the cgroup
allows it and EPERM where it does not. A job's own view of its GPUs is that verdict, taken by
the job script outside the container; the container must have exactly those device files,
usable, and no other GPU.
"""

import subprocess

import pytest

from gpuprobe import DENIED, GPUS_SECTION, PROBE, UNITS, assert_container_has_exactly, held, seen
from helpers import (ALICE, BOB, IMAGE, SOCKER, TEST_CONFIG, refused, sbatch, socker, socker_containers, wait_job)

GPU_CONFIG = TEST_CONFIG + GPUS_SECTION

@pytest.fixture
def gpus(site_config, alice_scratch):
    site_config(GPU_CONFIG)
    (alice_scratch / "probe.sh").write_text(PROBE)
    return alice_scratch


def in_container(where="container", *socker_options):
    """The job-script line that probes inside a container."""
    options = " ".join(socker_options)
    return f"{SOCKER} run {options} -v /scratch/{ALICE}:/s {IMAGE} sh /s/probe.sh {where}"


def on_host(where="host"):
    return f"sh /scratch/{ALICE}/probe.sh {where}"


def run_job(scratch, script, *options):
    output = scratch / f"job-{len(list(scratch.glob('job-*')))}.out"
    job = sbatch(ALICE, script, "--mem=200M", "-c", "1", *options, output=output)
    wait_job(job, 180)
    return output.read_text()


def test_a_job_with_two_gpus_gets_exactly_them_usable_with_the_library_read_only(gpus):
    text = run_job(gpus, f"{on_host()}; {in_container()}", "--gres=gpu:2")
    host, _, _ = seen(text, "host")
    assert len(held(host)) == 2 and sum(v == DENIED for v in host.values()) == 2, text
    assert_container_has_exactly(text, held(host))


def test_the_callers_gpu_variables_widen_nothing(gpus):
    hostile = "CUDA_VISIBLE_DEVICES=0,1,2,3 SLURM_STEP_GPUS=0,1,2,3 SLURM_JOB_GPUS=0,1,2,3 NVIDIA_VISIBLE_DEVICES=all"
    script = (f"export {hostile}; {on_host()}; "
              + in_container("container", "-e CUDA_VISIBLE_DEVICES -e NVIDIA_VISIBLE_DEVICES=all -e SLURM_STEP_GPUS "
                                          "-e ROCR_VISIBLE_DEVICES=0,1,2,3"))
    text = run_job(gpus, script, "--gres=gpu:2")
    host, _, _ = seen(text, "host")
    assert len(held(host)) == 2, text
    assert_container_has_exactly(text, held(host))


def test_two_jobs_at_once_get_disjoint_gpus_each_its_own(gpus):
    # Each job holds its container until both have probed: they run side by side.
    script = f"{on_host()}; {in_container()}; touch /scratch/{ALICE}/probed-$SLURM_JOB_ID; " \
             f"while [ $(ls /scratch/{ALICE}/probed-* | wc -l) -lt 2 ]; do sleep 0.2; done"
    outputs = [gpus / f"together-{i}.out" for i in range(2)]
    jobs = [sbatch(ALICE, script, "--mem=200M", "-c", "1", "--gres=gpu:2", "--time=3", output=output)
            for output in outputs]
    for job in jobs:
        wait_job(job, 240)
    texts = [output.read_text() for output in outputs]
    mine = [held(seen(text, "host")[0]) for text in texts]
    assert all(len(units) == 2 for units in mine) and not set(mine[0]) & set(mine[1]), texts
    for text, units in zip(texts, mine):
        assert_container_has_exactly(text, units)


def test_a_job_without_gres_on_a_gpu_node_runs_containers_with_no_gpu(gpus):
    text = run_job(gpus, f"{on_host()}; {in_container()}; echo status=$?")
    assert held(seen(text, "host")[0]) == [], text
    assert "status=0" in text, text
    assert_container_has_exactly(text, [])


@pytest.mark.parametrize("gres", [[], ["--gres=gpu:1"]], ids=["no-gres", "one-gpu"])
def test_a_node_whose_gpus_socker_is_not_told_of_still_runs_containers_in_every_job(alice_scratch, gres):
    # The shipped configuration has no gpus section; Slurm still denies each job the GPUs it
    # does not hold, in the batch step and in each srun step, and the container must start.
    (alice_scratch / "probe.sh").write_text(PROBE)
    script = f"{on_host()}; {in_container()}; echo status=$?; srun -n1 {in_container('step')}; echo step-status=$?"
    text = run_job(alice_scratch, script, *gres)
    assert sum(v == DENIED for v in seen(text, "host")[0].values()) == len(UNITS) - len(gres), text
    assert "status=0" in text and "step-status=0" in text, text
    assert seen(text, "container")[0] == {} and seen(text, "step")[0] == {}, text


def test_a_job_holding_every_gpu_of_the_node_gets_them_all(gpus):
    text = run_job(gpus, f"{on_host()}; {in_container()}", "--gres=gpu:4")
    assert held(seen(text, "host")[0]) == UNITS, text
    assert_container_has_exactly(text, UNITS)


def test_a_step_gets_its_own_gpus_not_the_jobs(gpus):
    script = (f"srun --gres=gpu:1 sh -c '{on_host('step-host')}; {in_container('step')}'; "
              f"srun --gres=none sh -c '{on_host('bare-host')}; {in_container('bare')}'")
    text = run_job(gpus, script, "--gres=gpu:2")
    step = held(seen(text, "step-host")[0])
    assert len(step) == 1, text
    assert_container_has_exactly(text, step, "step")
    assert held(seen(text, "bare-host")[0]) == [], text
    assert_container_has_exactly(text, [], "bare")


def test_each_task_of_gpus_per_task_gets_its_own_gpu(gpus):
    script = f"srun -n2 --gpus-per-task=1 sh -c '{on_host('host-$SLURM_PROCID')}; {in_container('task-$SLURM_PROCID')}'"
    text = run_job(gpus, script, "-n2", "--gpus-per-task=1")
    tasks = [held(seen(text, f"host-{rank}")[0]) for rank in range(2)]
    assert [len(units) for units in tasks] == [1, 1] and tasks[0] != tasks[1], text
    for rank, units in enumerate(tasks):
        assert_container_has_exactly(text, units, f"task-{rank}")


def test_outside_jobs_no_gpu(gpus):
    result = socker(ALICE, "run", "-v", f"/scratch/{ALICE}:/s", IMAGE, "sh", "/s/probe.sh", "outside")
    assert result.returncode == 0, result.stderr
    assert_container_has_exactly(result.stdout.decode(), [], "outside")


@pytest.mark.parametrize("option", ["--gpus=all", "--device=/dev/socker-gpu2", "--device-cgroup-rule=c 1:* rwm",
                                    "--privileged"])
def test_device_options_are_refused_and_start_nothing(gpus, option):
    result = socker(BOB, "run", option, IMAGE, "true")
    message = refused(result)
    if option != "--privileged":
        assert "a container gets the GPUs of your job" in message, message
    assert not socker_containers()


def test_config_check_reports_a_unit_that_is_not_a_device(site_config):
    site_config(GPU_CONFIG.replace(UNITS[3], "/dev/shm"))
    result = subprocess.run([SOCKER, "config", "check"], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout
    assert "socker: gpus: device /dev/shm is not a character device in /dev" in result.stdout.splitlines()


def test_config_check_accepts_the_fake_gpus(gpus):
    result = subprocess.run([SOCKER, "config", "check"], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "config check: ok\n"), result.stdout


def test_what_a_user_writes_into_the_jobs_record_widens_nothing(gpus):
    # The controller's record of a job shows its name and comment as the user wrote them, lines
    # and all: socker reads no such record, only the kernel's verdict.
    forged = "\n   Nodes=vm CPU_IDs=0 Mem=0 GRES=gpu:4(IDX:0-3)"
    text = run_job(gpus, f"{on_host()}; {in_container()}", "--gres=gpu:2", f"--comment=x{forged}",
                   f"--job-name=n{forged}")
    host, _, _ = seen(text, "host")
    assert len(held(host)) == 2, text
    assert_container_has_exactly(text, held(host))
