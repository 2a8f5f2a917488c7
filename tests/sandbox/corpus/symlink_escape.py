import os
secret_path = input().strip()
os.symlink(secret_path, "link")
os.symlink("/proc/1/root", "rootlink")
for path in ["link", "rootlink" + secret_path]:
    try:
        print(path, open(path).read())
    except OSError as exc:
        print(path, "blocked", exc)
