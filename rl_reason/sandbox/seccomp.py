"""The seccomp filter both backends install: deny the syscalls a submission could use to reach
the sandbox's own processes or the kernel's attack surface (ptrace of the sandbox's PID 1,
reading another process's memory, BPF, perf, keyrings, mounts, namespaces, module loading).

Built here as a classic BPF program in pure Python (no libseccomp binding): bubblewrap takes it
through `--seccomp FD`. Docker takes a JSON profile instead, shipped as seccomp_profile.json and
generated from the same list (`python3 -m rl_reason.sandbox.seccomp > seccomp_profile.json`).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

# name -> (x86_64 number, aarch64 number or None where the syscall does not exist there)
DENIED_SYSCALLS: dict[str, tuple[int, int | None]] = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kcmp": (312, 272),
    "perf_event_open": (298, 241),
    "bpf": (321, 280),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "unshare": (272, 97),
    "setns": (308, 268),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "create_module": (174, None),
    "query_module": (178, None),
    "get_kernel_syms": (177, None),
    "lookup_dcookie": (212, 18),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "reboot": (169, 142),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "syslog": (103, 116),
    "vhangup": (153, 58),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "clock_adjtime": (305, 266),
    "adjtimex": (159, 171),
    "iopl": (172, None),
    "ioperm": (173, None),
    "uselib": (134, None),
    "_sysctl": (156, None),
    "nfsservctl": (180, None),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
}

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000  # x32-ABI calls on x86_64 carry this bit; none are needed, all are denied

BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
OFFSET_NR, OFFSET_ARCH = 0, 4  # struct seccomp_data

PROFILE_FILE = Path(__file__).with_name("seccomp_profile.json")


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def bpf_program() -> bytes:
    """struct sock_filter[] for bwrap --seccomp: EPERM for the denied syscalls on x86_64 and
    aarch64, EPERM for every syscall of any other ABI (i386 `int 0x80` would bypass the x86_64
    numbers), allow the rest."""
    deny = _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM)
    allow = _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)

    def arch_block(numbers: list[int], x32_guard: bool) -> list[bytes]:
        # each check jumps forward to the `deny` that ends the block; the fall-through allows
        body = [_insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR)]
        checks = ([(BPF_JGE_K, X32_SYSCALL_BIT)] if x32_guard else []) + [(BPF_JEQ_K, n) for n in numbers]
        for i, (code, k) in enumerate(checks):
            body.append(_insn(code, len(checks) - i, 0, k))  # -> deny
        return body + [allow, deny]

    x86 = arch_block(sorted(n for n, _ in DENIED_SYSCALLS.values()), x32_guard=True)
    arm = arch_block(sorted(n for _, n in DENIED_SYSCALLS.values() if n is not None), x32_guard=False)
    head = [
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        _insn(BPF_JEQ_K, 2, 0, AUDIT_ARCH_X86_64),  # -> x86 block
        _insn(BPF_JEQ_K, 1 + len(x86), 0, AUDIT_ARCH_AARCH64),  # -> arm block
        deny,
    ]
    if max(len(x86), len(arm)) > 255:
        raise AssertionError("a BPF jump offset is 8 bits; split the syscall list")
    return b"".join(head + x86 + arm)


def docker_profile() -> dict:
    """Docker's seccomp JSON: allow by default, EPERM for the denied syscalls. The container also
    drops every capability, which is what Docker's default profile otherwise gates."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": sorted(DENIED_SYSCALLS), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}],
    }


def docker_profile_text() -> str:
    return json.dumps(docker_profile(), indent=1, sort_keys=True) + "\n"


def shipped_profile() -> str:
    """The profile file shipped with the package (kept equal to docker_profile() by a test)."""
    return PROFILE_FILE.read_text()


if __name__ == "__main__":
    print(docker_profile_text(), end="")
