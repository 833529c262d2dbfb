#!/usr/bin/env python3
"""Benchmark socker against plain `docker run` and native execution (run as root).

socker runs as an unprivileged user (default socker-alice) through
`setpriv --reuid --regid --init-groups`; `docker run` runs as root, but with the same
user and the same restrictions socker asks the engine for:

    docker run --rm --init --user UID:GID --cap-drop ALL --security-opt no-new-privileges --net none

and the same image. Native runs are the user's own processes, also through setpriv.
All runs are outside any batch job (socker then applies its `outside_jobs` limits,
by default 1 CPU of CPU time, which is why Bowtie runs with -p 1 everywhere).

Measured, interleaved (the order of socker/docker/native rotates every iteration):

  start        `socker run IMG true` vs `docker run IMG true` vs `true`: p50, p90, ratio
  concurrency  N simultaneous starts (N = 1, 8, 16, 32): wall time until all have ended
  compute      Bowtie: align generated reads to a generated reference, best of 3
  memory       peak RSS and anonymous memory of socker and of its root-owned guardian while
               `sleep 5` runs (sampled with psutil)
  gpustart     `socker run IMG true` with two GPUs (the fake ones of integration/slurm/fake-gpus,
               given outside jobs: the kernel's verdict on four units, their device entries and
               the driver library's bind) against the same on a node without GPUs configured
  profile      where one `socker run IMG true` spends its time (benchmarks/startprofile.py: landmarks in
               an strace of socker, median of 10), the wall and CPU time of untraced runs of socker
               and `docker run`, and `socker --help` against `docker --help`
  coldstart    16 simultaneous `socker run IMG true` of an image the node lacks, against
               `docker pull IMG` and then 16 simultaneous `docker run IMG true`: wall time until
               all have ended, and the pulls that reached the site registry (its access log).
               IMG is made anew for every repetition (integration/siteregistry.py: one layer of
               random bytes) and pushed to the harness's registry, so that the engine has nothing
               of it. The machine's load is recorded at the start and the end: other work on its
               cores moves every figure.

Output: Markdown on stdout (or JSON with --json), and benchmarks/results/latest.{md,json,png}
(partial.* for --quick or --only).

Targets (benchmarks/targets.py), checked after a full run of the parts they name: socker's start p50 and p90
against docker run's, 32 simultaneous starts, the anonymous memory of socker and its guardian,
`socker --help`, the cold start. Exit status: 0, every target met (or a --quick run, which
checks none); 1, the benchmark could not run; 3, a target missed, each named on stderr.
"""

import argparse
import contextlib
import json
import os
import platform
import pwd
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

import allowlist
import liveconfig
import startprofile
from targets import EXIT_TARGET_MISSED, missed_targets

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import siteregistry  # the harness's registry: publishing images, its access log, logins
from gpuprobe import GPUS_SECTION, UNITS  # the harness's fake GPUs

RESULTS = HERE / "results"
CONFIG = Path("/etc/socker/socker.yaml")
START_IMAGE = "socker-test/busybox:latest"
BOWTIE_IMAGE = "socker-test/bowtie:latest"
COLDSTART_NAME = "bench-coldstart"  # in the registry's test namespace
COLDSTART_IMAGE = siteregistry.reference(COLDSTART_NAME)
TOOLS = ("socker", "docker", "native")
PARTS = ("start", "gpustart", "concurrency", "compute", "memory", "profile", "coldstart")


def note(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def die(message):
    note(f"ERROR: {message}")
    sys.exit(1)


# ---------------------------------------------------------------------------- helpers

class User:
    def __init__(self, name):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            die(f"no user {name} (integration/up creates socker-alice)")
        if entry.pw_uid == 0:
            die("the benchmark user must not be root")
        self.name, self.uid, self.gid, self.home = name, entry.pw_uid, entry.pw_gid, entry.pw_dir
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self.home, "USER": name,
                    "LOGNAME": name, "LANG": "C.UTF-8"}

    def argv(self, command):
        """`command` run as this user, with their groups."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--", *command]


def percentile(values, q):
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    data = sorted(values)
    if not data:
        return None
    k = (len(data) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def ratio(a, b):
    return a / b if a is not None and b else None


def run_timed(argv, env=None, cwd=None, capture=False):
    """(seconds, exit status, stderr text or '')."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE if capture else subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    return elapsed, proc.returncode, (proc.stderr.decode(errors="replace") if capture else "")


def rotated(items, i):
    i %= len(items)
    return items[i:] + items[:i]


def command_output(argv, **kwargs):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------------------- the commands

class Commands:
    """How each tool runs an image's command as the benchmark user."""

    def __init__(self, user, socker):
        self.user, self.socker = user, socker
        self.docker_prefix = ["docker", "run", "--rm", "--init", "--user", f"{user.uid}:{user.gid}",
                              "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--net", "none"]

    def argv(self, tool, image, command, workdir=None):
        if tool == "socker":
            return self.user.argv([self.socker, "run", image, *command]), self.user.env
        if tool == "docker":
            mounts = ["-v", f"{workdir}:{workdir}", "-w", workdir] if workdir else []
            return [*self.docker_prefix, *mounts, image, *command], None
        if tool == "native":
            return self.user.argv(command), self.user.env
        raise ValueError(tool)


# ---------------------------------------------------------------------------- preparation

def machine_info(socker):
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "os": command_output(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "docker": command_output(["docker", "version", "-f", "{{.Server.Version}}"]),
        "storage_driver": command_output(["docker", "info", "-f", "{{.Driver}}/{{.CgroupDriver}}"]),
        "socker": command_output([socker, "--version"]).splitlines()[0] if socker else "",
        "bowtie": "bowtie " + " ".join((command_output(["bowtie", "--version"]).splitlines() or [""])[0].split()[-1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_at_start": machine_load(),
    }


def machine_load():
    """The 1-minute load average and the qemu processes running: other work sharing the cores."""
    qemu = sum(1 for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("qemu-system"))
    return {"load_1m": round(os.getloadavg()[0], 2), "qemu_processes": qemu}


def check_docker(commands, user):
    for image in (START_IMAGE, BOWTIE_IMAGE):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            hint = "integration/images/build" if image == START_IMAGE else "integration/images/build-mpi bowtie"
            die(f"image {image} is missing: run {hint}")
    argv, env = commands.argv("docker", START_IMAGE, ["true"])
    _, rc, err = run_timed(argv, env=env, capture=True)
    if rc != 0:
        die(f"docker run failed ({rc}): {err.strip()}")
    argv, env = commands.argv("native", None, ["true"])
    _, rc, err = run_timed(argv, env=env, cwd=user.home, capture=True)
    if rc != 0:
        die(f"setpriv as {user.name} failed ({rc}): {err.strip()}")


def socker_images(user, socker):
    """{image: present, pullable or absent} as `socker images` shows them to the user."""
    out = subprocess.run(user.argv([socker, "images"]), env=user.env, cwd=user.home,
                         capture_output=True, text=True)
    if out.returncode != 0:
        die(f"socker images failed: {out.stderr.strip()}")
    return allowlist.statuses(out.stdout)


@contextlib.contextmanager
def images_allowed(user, socker, present, pulled, may_edit):
    """The benchmark's images allowed in the live config for the duration of the with-block: those
    in `present` are on this node; those in `pulled`, which it lacks, socker may pull from the
    harness's registry.

    What the config lacks gets added (allowlist.with_entries: the images, and the registry with the
    pull account's credentials), and the config is restored byte for byte afterwards, however the
    block ends (see liveconfig.replaced).
    """
    statuses = socker_images(user, socker)
    missing = [i for i in present + pulled if i not in statuses]
    unlisted = [i for i in pulled if statuses.get(i) == "absent"]  # allowed, but its registry is not listed
    if not missing and not unlisted:
        _require(present, pulled, statuses)
        yield
        return
    if not may_edit:
        die(f"{', '.join(missing + unlisted)}: not allowed in {CONFIG}, or not from a registry it lists; "
            "add them or drop --no-config-change")
    registry = (siteregistry.HOST, str(siteregistry.CREDENTIALS)) if pulled else None
    try:
        text = allowlist.with_entries(CONFIG.read_bytes(), missing, registry)
    except ValueError as e:
        die(f"cannot allow {', '.join(missing + unlisted)} in {CONFIG}: {e}")
    with pull_credentials() if pulled else contextlib.nullcontext(), liveconfig.replaced(CONFIG, text):
        try:
            note(f"temporarily allowed {', '.join(missing + unlisted)} in {CONFIG}")
            _require(present, pulled, socker_images(user, socker))
            yield
        finally:
            note(f"restoring {CONFIG}")


def _require(present, pulled, statuses):
    absent = [i for i in present if statuses.get(i) != "present"]
    if absent:
        die(f"allowed but not present on this node: {', '.join(absent)}")
    unpullable = [i for i in pulled if statuses.get(i) != "pullable"]
    if unpullable:
        die(f"not pullable, or present already: {', '.join(unpullable)}")


@contextlib.contextmanager
def pull_credentials():
    """The pull account's credentials file that an added registry entry names, for the with-block;
    one that is there already is left as it is."""
    if siteregistry.CREDENTIALS.exists():
        yield
        return
    siteregistry.write_credentials()
    try:
        yield
    finally:
        siteregistry.CREDENTIALS.unlink(missing_ok=True)


@contextlib.contextmanager
def published_image(payload_mib):
    """COLDSTART_IMAGE made anew in the harness's registry, its one layer holding `payload_mib` MiB
    of random bytes (incompressible: a pull transfers all of it); the engine has nothing of it, not
    even its manifest (an engine that has pulled a manifest once does not fetch it again, and the
    registry's log would not show the pull). Gone from the registry and the engine after the block."""
    try:
        image = siteregistry.publish(COLDSTART_NAME, payload_bytes=payload_mib << 20)
    except (OSError, RuntimeError) as e:
        die(f"cannot publish an image to {siteregistry.HOST} (integration/registry/up): {e}")
    try:
        yield image.reference
    finally:
        siteregistry.remove_from_engine(image.reference)
        siteregistry.forget(image.pinned)


# ---------------------------------------------------------------------------- Bowtie data

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def prepare_bowtie(user, directory, ref_bp, reads, copies, read_len, seed):
    """Generate reference + reads (deterministic) and the index, as the user; reuse if present.

    The reads file holds `copies` copies of `reads` distinct reads: enough work for the compute
    to dwarf a container's start, without generating millions of reads base by base.
    """
    stamp = f"ref_bp={ref_bp} reads={reads} read_len={read_len} seed={seed} copies={copies} v=2\n"
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, user.uid, user.gid)
    stamp_file = directory / "inputs"
    if stamp_file.exists() and stamp_file.read_text() == stamp and (directory / "ref.1.ebwt").exists():
        note(f"bowtie data in {directory} up to date")
        return None
    note(f"generating a {ref_bp / 1e6:.1f} Mbp reference and {reads} reads of {read_len} bp (seed {seed})")
    rng = random.Random(seed)
    contigs, per = [], ref_bp // 3
    for c in range(3):
        contigs.append("".join(rng.choices("ACGT", k=per)))
    with open(directory / "ref.fa", "w") as f:
        for c, seq in enumerate(contigs):
            f.write(f">chr{c + 1}\n")
            for i in range(0, len(seq), 60):
                f.write(seq[i:i + 60] + "\n")
    quality = "I" * read_len
    records = []
    for r in range(reads):
        if rng.random() < 0.05:  # 5 % reads from nowhere: unaligned
            read = "".join(rng.choices("ACGT", k=read_len))
        else:
            seq = contigs[rng.randrange(3)]
            pos = rng.randrange(len(seq) - read_len)
            read = list(seq[pos:pos + read_len])
            for i in range(read_len):  # 1 % substitutions
                if rng.random() < 0.01:
                    read[i] = rng.choice("ACGT".replace(read[i], ""))
            read = "".join(read)
            if rng.random() < 0.5:
                read = read.translate(COMPLEMENT)[::-1]
        records.append(f"@r{r}\n{read}\n+\n{quality}\n")
    with open(directory / "reads.fq", "w") as f:
        for _ in range(copies):
            f.writelines(records)
    for p in directory.iterdir():
        os.chown(p, user.uid, user.gid)
    note("bowtie-build (native, as the user)")
    t, rc, err = run_timed(user.argv(["bowtie-build", "-q", "ref.fa", "ref"]), env=user.env,
                           cwd=directory, capture=True)
    if rc != 0:
        die(f"bowtie-build failed ({rc}): {err.strip()[-500:]}")
    stamp_file.write_text(stamp)
    os.chown(stamp_file, user.uid, user.gid)
    return t


def bowtie_command(tool):
    return ["bowtie", "-p", "1", "--seed", "1", "-S", "ref", "reads.fq", f"out-{tool}.sam"]


def aligned_count(stderr):
    m = re.search(r"reads with at least one (?:reported )?alignment:\s*(\d+)", stderr)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------- measurements

def measure_start(commands, user, tools, reps, warmup):
    samples = {t: [] for t in tools}
    failures = {t: 0 for t in tools}
    for i in range(-warmup, reps):
        for tool in rotated(list(tools), i):
            argv, env = commands.argv(tool, START_IMAGE, ["true"])
            t, rc, _ = run_timed(argv, env=env, cwd=user.home)
            if i < 0:
                continue
            if rc == 0:
                samples[tool].append(t)
            else:
                failures[tool] += 1
        if i >= 0 and (i + 1) % 10 == 0:
            note(f"start: {i + 1}/{reps}")
    result = {}
    for tool in tools:
        s = samples[tool]
        result[tool] = {"samples_s": s, "n": len(s), "failures": failures[tool],
                        "p50_s": percentile(s, 50), "p90_s": percentile(s, 90),
                        "mean_s": statistics.fmean(s) if s else None,
                        "min_s": min(s) if s else None, "max_s": max(s) if s else None}
    if "socker" in tools:
        for q in ("p50", "p90"):
            result[f"ratio_{q}_socker_docker"] = ratio(result["socker"][f"{q}_s"], result["docker"][f"{q}_s"])
    return result


def measure_gpu_start(commands, user, reps, warmup):
    """socker's start with two GPUs against the same without GPUs configured, interleaved; the
    config is swapped (liveconfig.replaced) between runs, outside the timed part."""
    plain = CONFIG.read_text()
    if "\ngpus:" in plain:
        die(f"{CONFIG} lists GPUs already: gpustart measures against a node without them")
    missing = [unit for unit in UNITS if not os.path.exists(unit)]
    if missing:
        die(f"{', '.join(missing)} missing (integration/up makes the fake GPUs)")
    with_gpus = (plain + GPUS_SECTION + f"  outside_jobs: [{UNITS[0]}, {UNITS[1]}]\n").encode()
    kinds = ("plain", "gpus")
    samples, failures = {k: [] for k in kinds}, {k: 0 for k in kinds}
    argv, env = commands.argv("socker", START_IMAGE, ["true"])
    for i in range(-warmup, reps):
        for kind in rotated(list(kinds), i):
            with liveconfig.replaced(CONFIG, with_gpus) if kind == "gpus" else contextlib.nullcontext():
                t, rc, err = run_timed(argv, env=env, cwd=user.home, capture=True)
            if i < 0:
                continue
            if rc == 0:
                samples[kind].append(t)
            else:
                failures[kind] += 1
                note(f"gpustart: {kind} run failed ({rc}): {err.strip()}")
    result = {kind: {"samples_s": samples[kind], "n": len(samples[kind]), "failures": failures[kind],
                     "p50_s": percentile(samples[kind], 50), "p90_s": percentile(samples[kind], 90)}
              for kind in kinds}
    for q in ("p50", "p90"):
        result[f"ratio_{q}_gpus_plain"] = ratio(result["gpus"][f"{q}_s"], result["plain"][f"{q}_s"])
    return result


def concurrent_wall(commands, user, tool, n, image=START_IMAGE):
    argv, env = commands.argv(tool, image, ["true"])
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, env=env, cwd=user.home, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(n)]
    errors = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            errors.append(f"exit {p.returncode}: {err.decode(errors='replace').strip()[-200:]}")
    return time.perf_counter() - t0, errors


def measure_concurrency(commands, user, tools, levels, reps):
    tools = [t for t in tools if t != "native"]
    out = []
    for n in levels:
        walls = {t: [] for t in tools}
        errors = {t: [] for t in tools}
        for i in range(reps):
            for tool in rotated(tools, i):
                wall, errs = concurrent_wall(commands, user, tool, n)
                walls[tool].append(wall)
                errors[tool] += errs
        row = {"n": n}
        for tool in tools:
            row[tool] = {"walls_s": walls[tool], "median_s": statistics.median(walls[tool]),
                         "per_start_s": statistics.median(walls[tool]) / n,
                         "failures": len(errors[tool]), "errors": errors[tool][:3]}
        if "socker" in tools:
            row["ratio_socker_docker"] = ratio(row["socker"]["median_s"], row["docker"]["median_s"])
        note(f"concurrency N={n}: " + ", ".join(f"{t} {row[t]['median_s']:.2f} s" for t in tools))
        out.append(row)
    return out


def cold_wall(commands, user, tool, image, n, docker_env):
    """Wall time of n simultaneous `IMG true` with `tool`, from a node that lacks the image until
    all have ended; docker's includes the `docker pull` it needs first (`docker_env`: logged in)."""
    t0 = time.perf_counter()
    if tool == "docker":
        pulled = subprocess.run(["docker", "pull", image], env=docker_env, capture_output=True, text=True)
        if pulled.returncode != 0:
            return time.perf_counter() - t0, [f"docker pull: {pulled.stderr.strip()[-200:]}"]
    _, errors = concurrent_wall(commands, user, tool, n, image)
    return time.perf_counter() - t0, errors


def measure_coldstart(commands, user, tools, n, reps, payload_mib):
    """Cold start (cold_wall) of each tool, interleaved, every repetition with an image of its own
    (published_image); the registry's access log counts what each repetition fetched."""
    tools = [t for t in tools if t != "native"]
    runs = {t: [] for t in tools}
    with siteregistry.logged_in(siteregistry.PULL_USER) as docker_env:
        for i in range(reps):
            for tool in rotated(tools, i):
                with published_image(payload_mib) as image:
                    log = siteregistry.AccessLog()
                    wall, errors = cold_wall(commands, user, tool, image, n, docker_env)
                    runs[tool].append({"wall_s": wall, "pulls": log.pulls(image),
                                       "fetched_mib": round(log.blob_bytes(image) / 2**20, 1),
                                       "failures": len(errors), "errors": errors[:3]})
                note(f"coldstart {i + 1}/{reps}: {tool} {wall:.2f} s, {runs[tool][-1]['pulls']} pull(s), "
                     f"{len(errors)} failure(s)")
    result = {"n": n, "image": COLDSTART_IMAGE}
    for tool in tools:
        walls = [r["wall_s"] for r in runs[tool]]
        result[tool] = {"runs": runs[tool], "p50_s": statistics.median(walls), "min_s": min(walls),
                        "max_s": max(walls), "pulls": [r["pulls"] for r in runs[tool]],
                        "fetched_mib": [r["fetched_mib"] for r in runs[tool]],
                        "failures": sum(r["failures"] for r in runs[tool])}
    if "socker" in tools:
        result["ratio_p50_socker_docker"] = ratio(result["socker"]["p50_s"], result["docker"]["p50_s"])
    return result


def measure_compute(commands, user, tools, directory, reps):
    times = {t: [] for t in tools}
    aligned = {t: set() for t in tools}
    for i in range(reps):
        for tool in rotated(list(tools), i):
            argv, env = commands.argv(tool, BOWTIE_IMAGE, bowtie_command(tool), workdir=str(directory))
            t, rc, err = run_timed(argv, env=env, cwd=directory, capture=True)
            if rc != 0:
                die(f"bowtie with {tool} failed ({rc}): {err.strip()[-800:]}")
            times[tool].append(t)
            aligned[tool].add(aligned_count(err))
            note(f"compute: {tool} run {i + 1}/{reps}: {t:.2f} s")
    result = {t: {"times_s": times[t], "best_s": min(times[t]), "median_s": statistics.median(times[t]),
                  "aligned_reads": sorted(a for a in aligned[t] if a is not None)} for t in tools}
    native = result["native"]["best_s"]
    result["overhead_pct"] = {t: (result[t]["best_s"] / native - 1) * 100 for t in tools if t != "native"}
    result["overhead_s"] = {t: result[t]["best_s"] - native for t in tools if t != "native"}
    counts = {tuple(result[t]["aligned_reads"]) for t in tools}
    result["same_alignments"] = len(counts) == 1
    for tool in tools:
        (directory / f"out-{tool}.sam").unlink(missing_ok=True)
    return result


def _memory(process):
    """(RSS, anonymous PSS) of a psutil.Process in kB, or None once it has ended.

    The anonymous PSS is what the process adds to its cgroup's memory charge: its anonymous
    pages, a page shared with another process (the guardian is a fork) counted by share. Its
    file pages (the binary and its libraries) are page cache, shared by every rank on the node.
    psutil gives the PSS of whole mappings only: counting the mappings that no file backs would
    leave out the pages of the binary's data that the process has written (1 to 2 MiB of each
    socker process), so this one figure is the kernel's Pss_Anon, from smaps_rollup.
    """
    try:
        rss = process.memory_info().rss
        rollup = Path(f"/proc/{process.pid}/smaps_rollup").read_text()
    except (psutil.Error, OSError):
        return None
    return rss // 1024, int(re.search(r"^Pss_Anon:\s+(\d+) kB", rollup, re.M).group(1))


def sample_memory(argv, env, cwd, interval=0.02):
    """Run argv; sample it and its direct children. Returns (exit status, peaks in kB by role)."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    main = psutil.Process(proc.pid)  # setpriv execs socker: the pid stays socker's
    peak = {role: {"rss_kb": 0, "anon_kb": 0} for role in ("main", "child")}
    peak["together_anon_kb"] = 0
    children_seen = set()
    while proc.poll() is None:
        main_rss, main_anon = _memory(main) or (0, 0)
        try:
            children = main.children()
        except psutil.Error:
            children = []
        kids = {kid.pid: m for kid in children if (m := _memory(kid))}
        children_seen.update(kids)
        kid_rss = sum(rss for rss, _ in kids.values())
        kid_anon = sum(anon for _, anon in kids.values())
        for role, rss, anon in (("main", main_rss, main_anon), ("child", kid_rss, kid_anon)):
            peak[role]["rss_kb"] = max(peak[role]["rss_kb"], rss)
            peak[role]["anon_kb"] = max(peak[role]["anon_kb"], anon)
        # The pair's charge is the sum at one moment: a page the fork shares moves from one
        # process's share to the other's, so the sum of the two peaks would count it twice.
        peak["together_anon_kb"] = max(peak["together_anon_kb"], main_anon + kid_anon)
        time.sleep(interval)
    peak["child"]["count"] = len(children_seen)
    return proc.returncode, peak


def measure_memory(commands, user, tools, reps):
    """Peak memory of socker and its guardian (and of the docker CLI) while `sleep 5` runs."""
    out = {}
    for tool in [t for t in ("socker", "docker") if t in tools]:
        runs = []
        for _ in range(reps):
            argv, env = commands.argv(tool, START_IMAGE, ["sleep", "5"])
            rc, peak = sample_memory(argv, env, user.home)
            if rc != 0:
                die(f"{tool} run sleep 5 failed ({rc})")
            runs.append(peak)
        best = max(runs, key=lambda p: p["main"]["rss_kb"] + p["child"]["rss_kb"])
        if tool == "socker":
            out["socker"] = best["main"]
            out["guardian"] = {**best["child"]}
            out["socker_plus_guardian"] = {"rss_kb": out["socker"]["rss_kb"] + out["guardian"]["rss_kb"],
                                           "anon_kb": best["together_anon_kb"],
                                           "anon_mib": best["together_anon_kb"] / 1024}
        else:
            out["docker_cli"] = best["main"]
        note(f"memory: {tool} sampled")
    if "socker" in out and "docker_cli" in out:
        out["ratio_rss_socker_docker_cli"] = ratio(out["socker"]["rss_kb"], out["docker_cli"]["rss_kb"])
    out["runs"] = reps
    return out


def measure_profile(commands, user, reps):
    """Where socker's start goes (traced), its wall and CPU time against docker run's (untraced,
    interleaved), and `--help` of each."""
    argv, env = commands.argv("socker", START_IMAGE, ["true"])
    socker_argv = argv[argv.index("--") + 1:]  # strace -u takes setpriv's place
    traced = [startprofile.traced_run(socker_argv, env, user.home, user.name, START_IMAGE) for _ in range(reps)]
    phases, alike = startprofile.median_phases(traced)
    note(f"profile: {reps} traced runs ({alike} with the first run's phases)")
    untraced = {t: {"wall_s": [], "cpu_s": []} for t in ("socker", "docker")}
    helps = {t: [] for t in ("socker", "docker")}
    help_argv = {"socker": commands.user.argv([commands.socker, "--help"]), "docker": ["docker", "--help"]}
    for i in range(reps):
        for tool in rotated(["socker", "docker"], i):
            argv, env = commands.argv(tool, START_IMAGE, ["true"])
            wall, cpu, rc = startprofile.untraced_run(argv, env, user.home)
            if rc != 0:
                die(f"{tool} run {START_IMAGE} true failed ({rc})")
            untraced[tool]["wall_s"].append(wall)
            untraced[tool]["cpu_s"].append(cpu)
            for _ in range(2):
                helps[tool].append(run_timed(help_argv[tool], env=env, cwd=user.home)[0])
    out = {"runs": reps, "runs_alike": alike, "phases": [{"name": n, "s": t} for n, t in phases],
           "traced_total_s": sum(t for _, t in phases)}
    for tool in ("socker", "docker"):
        out[tool] = {"wall_p50_s": percentile(untraced[tool]["wall_s"], 50),
                     "cpu_p50_s": percentile(untraced[tool]["cpu_s"], 50)}
    out["help"] = {t: {"p50_s": percentile(helps[t], 50)} for t in helps}
    out["help"]["ratio_p50_socker_docker"] = ratio(out["help"]["socker"]["p50_s"], out["help"]["docker"]["p50_s"])
    return out


# ---------------------------------------------------------------------------- reporting

def ms(s):
    return "–" if s is None else f"{s * 1000:.0f} ms" if s >= 0.1 else f"{s * 1000:.1f} ms"


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}×"


def fmt_load(load):
    return f"{load['load_1m']:.2f} ({load['qemu_processes']} qemu processes running)"


def coldstart_lines(c, p):
    ctools = [t for t in p["tools"] if t != "native"]
    lines = [f"## Cold start: {c['n']} simultaneous `IMG true` of an image the node lacks "
             f"(median of {p['coldstart_reps']})", "",
             f"`{c['image']}`, made anew and pushed to the harness's registry for every repetition: one layer "
             f"of {p['coldstart_payload_mib']} MiB of random bytes over busybox, of which the engine has nothing. "
             f"socker: {c['n']} × `socker run IMG true` at once, as the user "
             f"(one pulls, the others wait for it). docker: `docker pull IMG` as root, then {c['n']} × "
             "`docker run IMG true` at once. Pulls: manifest GETs in the registry's access log.", "",
             "| | p50 wall | min | max | registry pulls per repetition | MiB fetched per repetition | failures |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for t in ctools:
        r = c[t]
        lines.append(f"| {t} | {r['p50_s']:.2f} s | {r['min_s']:.2f} s | {r['max_s']:.2f} s | "
                     f"{', '.join(map(str, r['pulls']))} | {', '.join(f'{x:.0f}' for x in r['fetched_mib'])} | "
                     f"{r['failures']} |")
    if "socker" in ctools:
        lines += ["", f"socker / docker: p50 **{fmt_ratio(c['ratio_p50_socker_docker'])}** (target ≤ 1.10×); "
                  f"registry pulls in socker's repetitions: **{', '.join(map(str, c['socker']['pulls']))}** "
                  "(target: 1 each)"]
    return lines + [""]


def markdown(res):
    m, p = res["machine"], res["params"]
    lines = ["# socker benchmark", "",
             f"{m['date']} · {m['cpu']} · {m['cores']} cores · {m['memory_gib']} GiB · kernel {m['kernel']} · "
             f"{m['os']} · Docker {m['docker']} ({m['storage_driver']}) · {m['socker']} · {m['bowtie']}", "",
             f"Other work on the machine: load average (1 min) {fmt_load(m['load_at_start'])} at the start, "
             f"{fmt_load(m['load_at_end'])} at the end.", "",
             f"Mode: {'quick' if p['quick'] else 'full'}; socker as {p['user']} via setpriv; docker run as root with "
             f"`{' '.join(p['docker_prefix'])}`; native = the user's own process. Outside any batch job. "
             "Iterations interleave the tools, rotating their order.", ""]
    tools = p["tools"]
    if "start" in res:
        s = res["start"]
        lines += [f"## Start overhead: `IMG true`, {p['start_reps']} runs each ({START_IMAGE})", "",
                  "| | p50 | p90 | mean | min | max | failures |", "|---|---:|---:|---:|---:|---:|---:|"]
        for t in tools:
            r = s[t]
            lines.append(f"| {t} | {ms(r['p50_s'])} | {ms(r['p90_s'])} | {ms(r['mean_s'])} | {ms(r['min_s'])} | "
                         f"{ms(r['max_s'])} | {r['failures']} |")
        if "socker" in tools:
            lines += ["", f"socker / docker: p50 **{fmt_ratio(s['ratio_p50_socker_docker'])}**, "
                      f"p90 **{fmt_ratio(s['ratio_p90_socker_docker'])}**"]
        lines.append("")
    if "gpustart" in res:
        g = res["gpustart"]
        lines += [f"## GPU start: `socker run IMG true` with two GPUs, {p['start_reps']} runs each", "",
                  "| socker | p50 | p90 | failures |", "|---|---:|---:|---:|"]
        for kind, label in (("plain", "no GPUs configured"), ("gpus", "two GPUs (of four probed)")):
            lines.append(f"| {label} | {ms(g[kind]['p50_s'])} | {ms(g[kind]['p90_s'])} | {g[kind]['failures']} |")
        lines += ["", f"with GPUs / without: p50 **{fmt_ratio(g['ratio_p50_gpus_plain'])}**, "
                  f"p90 **{fmt_ratio(g['ratio_p90_gpus_plain'])}**", ""]
    if "concurrency" in res:
        ctools = [t for t in tools if t != "native"]
        lines += [f"## Concurrency: N simultaneous `IMG true`, wall time until all ended "
                  f"(median of {p['concurrency_reps']})", "",
                  "| N | " + " | ".join(ctools) + (" | socker / docker | failures |" if "socker" in ctools else " | failures |"),
                  "|---:|" + "---:|" * len(ctools) + ("---:|---:|" if "socker" in ctools else "---:|")]
        for row in res["concurrency"]:
            cells = [f"{row[t]['median_s']:.2f} s" for t in ctools]
            fails = "/".join(str(row[t]["failures"]) for t in ctools)
            extra = [fmt_ratio(row.get("ratio_socker_docker"))] if "socker" in ctools else []
            lines.append(f"| {row['n']} | " + " | ".join(cells + extra + [fails]) + " |")
        lines.append("")
    if "compute" in res:
        c = res["compute"]
        lines += [f"## Compute: Bowtie, {p['reads'] * p['read_copies']:,} reads ({p['reads']:,} distinct) "
                  f"× {p['read_len']} bp against "
                  f"{p['ref_bp'] / 1e6:.1f} Mbp, `-p 1`, best of {p['compute_reps']}", "",
                  "| | best | median | overhead vs native | aligned reads |", "|---|---:|---:|---:|---:|"]
        for t in tools:
            over = "–" if t == "native" else f"{c['overhead_pct'][t]:+.1f} % ({c['overhead_s'][t]:+.2f} s)"
            lines.append(f"| {t} | {c[t]['best_s']:.2f} s | {c[t]['median_s']:.2f} s | {over} | "
                         f"{', '.join(map(str, c[t]['aligned_reads']))} |")
        lines += ["", "Every tool reported the same alignments." if c["same_alignments"]
                  else "**The tools reported different alignment counts.**", ""]
        if res.get("bowtie_build_s"):
            lines += [f"(bowtie-build of the reference, native: {res['bowtie_build_s']:.1f} s)", ""]
    if "memory" in res:
        mm = res["memory"]
        lines += [f"## Memory while the container runs `sleep 5` (peak over {mm['runs']} run(s), sampled every 20 ms)", "",
                  "| process | peak RSS | anonymous (PSS), charged to the job |",
                  "|---|---:|---:|"]
        for key, label in (("socker", "socker (the caller's process)"),
                           ("guardian", "socker's guardian (root-owned child)"),
                           ("socker_plus_guardian", "**socker + guardian**"),
                           ("docker_cli", "docker CLI (`docker run`), for comparison")):
            if key in mm:
                lines.append(f"| {label} | {mm[key]['rss_kb'] / 1024:.1f} MiB | {mm[key]['anon_kb'] / 1024:.1f} MiB |")
        lines.append("")
    if "profile" in res:
        lines += profile_lines(res["profile"])
    if "coldstart" in res:
        lines += coldstart_lines(res["coldstart"], p)
    if not p["quick"]:
        missed = missed_targets(res)
        lines += ["## Targets", "", *(f"- missed: {m}" for m in missed)] if missed else \
                 ["## Targets", "", "Every target of the parts measured was met.", ""]
        lines.append("")
    return "\n".join(lines)


def profile_lines(pr):
    total = pr["traced_total_s"]
    lines = [f"## Profile: one `socker run IMG true` (median of {pr['runs']} traced runs)", "",
             "Phases between landmarks of an strace of socker (benchmarks/startprofile.py); tracing slows "
             "every traced call, so read the shares, not the sums.", "",
             "| phase | median | share |", "|---|---:|---:|"]
    for phase in pr["phases"]:
        lines.append(f"| {phase['name']} | {ms(phase['s'])} | {100 * phase['s'] / total:.0f} % |")
    lines += [f"| **total, traced** | {ms(total)} | |", "",
              "| untraced, p50 | wall | CPU (with the guardian) |", "|---|---:|---:|",
              f"| socker | {ms(pr['socker']['wall_p50_s'])} | {ms(pr['socker']['cpu_p50_s'])} |",
              f"| docker run (the CLI; the engine's work is not in its CPU) | {ms(pr['docker']['wall_p50_s'])} | "
              f"{ms(pr['docker']['cpu_p50_s'])} |", "",
              f"`socker --help` p50 {ms(pr['help']['socker']['p50_s'])}, `docker --help` "
              f"{ms(pr['help']['docker']['p50_s'])}: **{fmt_ratio(pr['help']['ratio_p50_socker_docker'])}**", ""]
    return lines


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tools = res["params"]["tools"]
    colors = {"socker": "#c0392b", "docker": "#2471a3", "native": "#7f8c8d"}
    panels = 3 if "coldstart" in res else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.8))
    ax1, ax2 = axes[:2]
    if "start" in res:
        shown = [t for t in tools if t != "native"] or tools
        data = [[x * 1000 for x in res["start"][t]["samples_s"]] for t in shown]
        parts = ax1.boxplot(data, showfliers=False, widths=0.5, patch_artist=True)
        ax1.set_xticks(range(1, len(shown) + 1), shown)
        for patch, t in zip(parts["boxes"], shown):
            patch.set_facecolor(colors[t])
            patch.set_alpha(0.35)
        rng = random.Random(0)
        for i, (t, d) in enumerate(zip(shown, data), start=1):
            ax1.scatter([i + rng.uniform(-0.12, 0.12) for _ in d], d, s=10, color=colors[t], zorder=3)
        title = "Start latency: `run IMG true`"
        if "native" in tools and res["start"]["native"]["p50_s"] is not None:
            title += f"\n(native `true`: p50 {res['start']['native']['p50_s'] * 1000:.1f} ms)"
        ax1.set_title(title)
        ax1.set_ylabel("ms per run")
        ax1.set_ylim(bottom=0)
        ax1.grid(axis="y", alpha=0.3)
    if "concurrency" in res:
        rows = res["concurrency"]
        ns = [r["n"] for r in rows]
        for t in [t for t in tools if t != "native"]:
            ax2.plot(ns, [r[t]["median_s"] for r in rows], marker="o", color=colors[t], label=t)
        if "socker" in tools:
            for r in rows:
                if r.get("ratio_socker_docker"):
                    ax2.annotate(f"{r['ratio_socker_docker']:.2f}×", (r["n"], r["socker"]["median_s"]),
                                 textcoords="offset points", xytext=(4, 6), fontsize=8, color=colors["socker"])
        ax2.set_xticks(ns)
        ax2.set_xlabel("simultaneous starts N")
        ax2.set_ylabel("wall time until all ended (s)")
        ax2.set_title("Concurrency scaling")
        ax2.set_ylim(bottom=0)
        ax2.grid(alpha=0.3)
        ax2.legend()
    if "coldstart" in res:
        plot_coldstart(axes[2], res["coldstart"], [t for t in tools if t != "native"], colors)
    m = res["machine"]
    fig.suptitle(f"socker vs docker run — {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, "
                 f"Docker {m['docker']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_coldstart(ax, c, tools, colors):
    for i, t in enumerate(tools, start=1):
        walls = [r["wall_s"] for r in c[t]["runs"]]
        ax.bar(i, c[t]["p50_s"], width=0.5, color=colors[t], alpha=0.35)
        ax.scatter([i] * len(walls), walls, s=14, color=colors[t], zorder=3)
    labels = {"socker": f"socker\n({c['n']} × socker run)", "docker": f"docker\n(pull, then {c['n']} × run)"}
    ax.set_xticks(range(1, len(tools) + 1), [labels[t] for t in tools])
    title = f"Cold start: {c['n']} simultaneous runs, image absent"
    if c.get("ratio_p50_socker_docker"):
        pulls = "/".join(map(str, sorted(set(c["socker"]["pulls"]))))
        title += f"\n(socker / docker p50 {c['ratio_p50_socker_docker']:.2f}×; socker's pulls: {pulls})"
    ax.set_title(title)
    ax.set_ylabel("wall time until all ended (s)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)


# ---------------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: few repetitions, small data")
    ap.add_argument("--json", action="store_true", help="print the measurements as JSON instead of Markdown")
    ap.add_argument("--user", default="socker-alice", help="the unprivileged user socker runs as")
    ap.add_argument("--socker", default="/usr/local/bin/socker", help="the installed setuid socker")
    ap.add_argument("--no-socker", action="store_true", help="docker and native only")
    ap.add_argument("--only", default=",".join(PARTS),
                    help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)")
    ap.add_argument("--data", default=None, help="Bowtie data directory (default /scratch/USER/bench)")
    ap.add_argument("--no-config-change", action="store_true",
                    help="never change the live config temporarily (to allow the benchmark's images "
                         "and list the harness's registry)")
    ap.add_argument("--out", default=str(RESULTS), help="results directory (default benchmarks/results)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        die("run as root (socker runs as the benchmark user through setpriv; docker needs root)")
    for tool in ("docker", "setpriv", "bowtie", "bowtie-build"):
        if shutil.which(tool) is None:
            die(f"{tool} not found" + (" (apt-get install bowtie)" if tool.startswith("bowtie") else ""))
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        die(f"unknown part(s) {', '.join(sorted(unknown))}")
    user = User(args.user)
    socker = None if args.no_socker else args.socker
    if socker and not os.access(socker, os.X_OK):
        die(f"{socker} not found (packaging/install)")
    tools = ["docker", "native"] if args.no_socker else list(TOOLS)
    quick = args.quick
    params = {
        "quick": quick, "user": user.name, "uid": user.uid, "gid": user.gid, "tools": tools,
        "start_reps": 6 if quick else 30, "warmup": 1 if quick else 3,
        "concurrency_levels": [1, 8] if quick else [1, 8, 16, 32], "concurrency_reps": 1 if quick else 3,
        "compute_reps": 1 if quick else 3, "memory_reps": 1 if quick else 3, "profile_reps": 3 if quick else 10,
        "ref_bp": 300_000 if quick else 1_500_000, "reads": 20_000 if quick else 200_000, "read_len": 50,
        "read_copies": 1 if quick else 20,
        "seed": 20171, "start_image": START_IMAGE, "bowtie_image": BOWTIE_IMAGE,
        "coldstart_n": 16, "coldstart_reps": 1 if quick else 5, "coldstart_payload_mib": 16 if quick else 128,
    }
    commands = Commands(user, socker)
    params["docker_prefix"] = commands.docker_prefix
    data = Path(args.data or f"/scratch/{user.name}/bench")

    note("checking docker and native runs")
    check_docker(commands, user)
    res = {"machine": machine_info(socker), "params": params}
    if "compute" in parts:
        if not data.parent.is_dir():
            die(f"{data.parent} does not exist (integration/up creates /scratch/USER)")
        res["bowtie_build_s"] = prepare_bowtie(user, data, params["ref_bp"], params["reads"], params["read_copies"],
                                               params["read_len"], params["seed"])
        argv, env = commands.argv("docker", BOWTIE_IMAGE, ["bowtie", "--version"])
        if run_timed(argv, env=env)[1] != 0:
            die(f"docker run {BOWTIE_IMAGE} bowtie --version failed")

    with contextlib.ExitStack() as stack:
        if "coldstart" in parts:
            siteregistry.remove_from_engine(COLDSTART_IMAGE)  # a name an interrupted run may have left
        if socker:
            present = [START_IMAGE] + ([BOWTIE_IMAGE] if "compute" in parts else [])
            pulled = [COLDSTART_IMAGE] if "coldstart" in parts else []
            stack.enter_context(images_allowed(user, socker, present, pulled, may_edit=not args.no_config_change))
            argv, env = commands.argv("socker", START_IMAGE, ["true"])
            _, rc, err = run_timed(argv, env=env, cwd=user.home, capture=True)
            if rc != 0:
                die(f"socker run failed ({rc}): {err.strip()}")
        if "start" in parts:
            note(f"start: {params['start_reps']} runs each of {', '.join(tools)}")
            res["start"] = measure_start(commands, user, tools, params["start_reps"], params["warmup"])
        if "gpustart" in parts and socker:
            note(f"gpustart: {params['start_reps']} runs each with and without GPUs")
            res["gpustart"] = measure_gpu_start(commands, user, params["start_reps"], params["warmup"])
        if "concurrency" in parts:
            res["concurrency"] = measure_concurrency(commands, user, tools, params["concurrency_levels"],
                                                     params["concurrency_reps"])
        if "compute" in parts:
            res["compute"] = measure_compute(commands, user, tools, data, params["compute_reps"])
        if "memory" in parts and socker:
            res["memory"] = measure_memory(commands, user, tools, params["memory_reps"])
        if "profile" in parts and socker:
            res["profile"] = measure_profile(commands, user, params["profile_reps"])
        if "coldstart" in parts:
            res["coldstart"] = measure_coldstart(commands, user, tools, params["coldstart_n"],
                                                 params["coldstart_reps"], params["coldstart_payload_mib"])
    res["machine"]["load_at_end"] = machine_load()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(res)
    # A smoke run or a partial one must not replace the figures the README quotes.
    stem = "latest" if not quick and parts == set(PARTS) else "partial"
    (out / f"{stem}.md").write_text(text + "\n")
    (out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    try:
        plot(res, out / f"{stem}.png")
    except ImportError:
        note("matplotlib missing: no plot (use benchmarks/run, which provides it)")
    note(f"wrote {out / stem}.md, .json and .png")
    print(json.dumps(res, indent=2) if args.json else text)
    missed = [] if quick else missed_targets(res)
    for line in missed:
        note(f"target missed: {line}")
    return EXIT_TARGET_MISSED if missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        note("interrupted")
        sys.exit(130)
