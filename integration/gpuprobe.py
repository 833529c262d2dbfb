"""The fake GPUs of integration/slurm/fake-gpus as the tests look at them: a probe script run in a
job (the kernel's verdict there) and in its container, and what it printed.

Opening a fake GPU gives ENXIO where the cgroup allows it and EPERM where it does not.
"""

UNITS = [f"/dev/socker-gpu{i}" for i in range(4)]
CONTROL = "/dev/socker-gpuctl"
LIBRARY = "/usr/lib/socker-test-gpu/libsocker-gpu.so.1"
# The gpus section of socker.yaml for them.
GPUS_SECTION = f"""\
gpus:
  units: [{", ".join(UNITS)}]
  shared: [{CONTROL}]
  libraries: [{LIBRARY}]
  variables: [CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES]
"""
ALLOWED, DENIED = "No such device or address", "Operation not permitted"
# Run as `sh probe.sh WHERE`: each GPU device file there and what opening it gives, the GPU
# variables, and whether the driver library is there and read-only.
PROBE = f"""\
for d in {" ".join(UNITS)} {CONTROL}; do
    [ -e "$d" ] || continue
    e=$( (exec 3<>"$d") 2>&1 ) && e=opened
    echo "$1 device $d ${{e##*: }}"
done
echo "$1 env CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES-unset}}"
echo "$1 env ROCR_VISIBLE_DEVICES=${{ROCR_VISIBLE_DEVICES-unset}}"
echo "$1 env NVIDIA_VISIBLE_DEVICES=${{NVIDIA_VISIBLE_DEVICES-unset}}"
if [ -f {LIBRARY} ]; then
    if (echo x >>{LIBRARY}) 2>/dev/null; then echo "$1 library writable"; else echo "$1 library read-only"; fi
fi
echo "$1 done"
"""


def seen(text, where):
    """What the probe printed at `where`: ({device: verdict}, {variable: value}, library or None)."""
    lines = [line.split(" ", 2)[1:] for line in text.splitlines() if line.startswith(f"{where} ")]
    assert ["done"] in lines, f"no complete probe at {where!r} in:\n{text}"
    found = {"device": {}, "env": {}, "library": {}}
    for kind, rest in (line for line in lines if len(line) == 2):
        key, _, value = rest.partition("=" if kind == "env" else " ")
        found[kind][key] = value
    return found["device"], found["env"], next(iter(found["library"]), None)


def held(devices):
    return sorted(path for path, verdict in devices.items() if path in UNITS and verdict == ALLOWED)


def assert_container_has_exactly(text, units, where="container"):
    devices, env, library = seen(text, where)
    assert devices == {**dict.fromkeys(units, ALLOWED), **({CONTROL: ALLOWED} if units else {})}, text
    numbered = ",".join(map(str, range(len(units))))
    assert env == {"CUDA_VISIBLE_DEVICES": numbered, "ROCR_VISIBLE_DEVICES": numbered,
                   "NVIDIA_VISIBLE_DEVICES": "void"}, text
    assert library == ("read-only" if units else None), text
