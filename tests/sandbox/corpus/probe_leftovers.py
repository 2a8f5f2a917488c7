import glob, os, site
found = glob.glob("/work/*") + glob.glob("/tmp/*") + glob.glob("/dev/shm/*") + glob.glob(os.path.expanduser("~/*")) + glob.glob("*")
print(sorted(p for p in found if not p.endswith("main.py") and p != "/work/run"))  # its own work dir
import ctypes
print("shm", ctypes.CDLL(None).shmget(0x5EED, 0, 0))
print("procs", sorted(open(f"/proc/{p}/cmdline").read().replace("\0", " ") for p in os.listdir("/proc") if p.isdigit()))
