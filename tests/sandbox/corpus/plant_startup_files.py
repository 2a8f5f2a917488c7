import os, site
hook = "print('HIJACKED')\n"
targets = ["usercustomize.py", "sitecustomize.py", "conftest.py", os.path.expanduser("~/usercustomize.py"), "/tmp/sitecustomize.py",
           "/dev/shm/planted", site.getusersitepackages() + "/usercustomize.py"] + [p + "/sitecustomize.py" for p in site.getsitepackages()]
for path in ["/work/planted", "/tmp/locked/planted"]:  # /work: the Docker runner's work root
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write("42")
    except OSError:
        pass
try:
    os.chmod("/tmp/locked", 0)  # a dir its cleaner cannot list
except OSError:
    pass
import ctypes
libc = ctypes.CDLL(None)
shm = libc.shmget(0x5EED, 4096, 0o1000 | 0o666)  # IPC_CREAT: SysV memory outlives the process
print("shm", shm)
for path in targets:
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        open(path, "w").write(hook)
        print("planted", path)
    except OSError:
        pass
