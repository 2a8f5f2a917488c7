import glob, os, site
found = glob.glob("/tmp/*") + glob.glob("/dev/shm/*") + glob.glob(os.path.expanduser("~/*")) + glob.glob("*")
print(sorted(p for p in found if not p.endswith("main.py")))
print("procs", sorted(open(f"/proc/{p}/cmdline").read().replace("\0", " ") for p in os.listdir("/proc") if p.isdigit()))
