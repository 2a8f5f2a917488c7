import glob, os
secret_path = input().strip()
for path in [secret_path, "/etc/shadow", "/root/.bash_history", "/proc/1/root" + secret_path]:
    try:
        print(path, open(path).read()[:200])
    except OSError as exc:
        print(path, "blocked", exc)
print(glob.glob("/work/*"), glob.glob("/root/*"), glob.glob("/home/*"))
