# Attach to the sandbox's PID 1 (bubblewrap's reaper / docker-init) and read its memory.
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH = 16
r = libc.ptrace(PTRACE_ATTACH, 1, 0, 0)
print("ptrace", "attached" if r == 0 else os.strerror(ctypes.get_errno()))


class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


buf = ctypes.create_string_buffer(64)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)
addr = 0x400000
try:
    addr = int(open("/proc/1/maps").readline().split("-")[0], 16)
except (OSError, ValueError):
    pass
remote = iovec(addr, 64)
n = libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
print("process_vm_readv", "read" if n >= 0 else os.strerror(ctypes.get_errno()))
