# shellcheck shell=bash
# integration/vm/qemu.sh: booting a guest made by integration/vm/build, shared by integration/vm/run
# (one guest) and integration/cluster/run (two). Source it after integration/lib.sh.
#
#   guest_overlay OVERLAY       a throw-away qcow2 overlay on the image's rootfs.raw
#   guest_qemu ARRAY OVERLAY RESULTS MEMORY CPUS [KERNEL-ARG...]
#                               fill the array named ARRAY with a qemu command line booting the
#                               image (software emulation, cgroup v2 only, serial console on
#                               stdout) from OVERLAY, the repository shared read-only (9p tag
#                               "repo"), RESULTS read-write ("results") and, if SOCKER_VM_DIST is
#                               set, that dist read-only ("dist"); no network unless the caller
#                               adds one. KERNEL-ARGs go on the kernel's command line.
#   guest_summary RESULTS       the pytest summary of RESULTS/pytest.log, if there is one
# Uses REPO (the repository) and IMAGE (the image's directory, build/vm/current).

guest_overlay() {
    qemu-img create -q -f qcow2 -F raw -b "$(readlink -f "$IMAGE")/rootfs.raw" "$1"
}

guest_qemu() {
    local -n _cmd=$1
    local overlay=$2 results=$3 memory=$4 cpus=$5
    shift 5
    _cmd=(
        qemu-system-x86_64 -accel tcg -cpu max -m "$memory" -smp "$cpus" -nographic -no-reboot
        -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img"
        # cgroup v2 only: systemd mounts the unified hierarchy, no v1 controller can be mounted.
        -append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all panic=-1 quiet $*"
        -drive "file=$overlay,if=virtio,format=qcow2,cache=unsafe"
        # The repository (with build/dist) read-only, and the results directory read-write.
        -virtfs "local,path=$REPO,mount_tag=repo,security_model=none,readonly=on"
        -virtfs "local,path=$results,mount_tag=results,security_model=none"
    )
    if [ -n "${SOCKER_VM_DIST:-}" ]; then  # another dist than build/dist (a directory holding socker/)
        [ -x "$SOCKER_VM_DIST/socker/socker" ] || die "SOCKER_VM_DIST=$SOCKER_VM_DIST holds no socker/socker"
        _cmd+=(-virtfs "local,path=$(cd -P -- "$SOCKER_VM_DIST" && pwd),mount_tag=dist,security_model=none,readonly=on")
    fi
}

guest_summary() {
    local log=$1/pytest.log
    [ -s "$log" ] || return 0
    echo "----- pytest (in the guest) -----"
    # The summary: failures' short reasons (if any) and the final line.
    if grep -q 'short test summary info' "$log"; then
        sed -n '/short test summary info/,$p' "$log"
    elif grep -qE '^=+ .* in [0-9.]+s.* =+$' "$log"; then
        grep -E '^=+ .* in [0-9.]+s.* =+$' "$log" | tail -n 1
    else
        tail -n 20 "$log"
    fi
    echo "---------------------------------"
}
