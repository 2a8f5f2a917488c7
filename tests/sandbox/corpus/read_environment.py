import os
print(dict(os.environ))
for pid in ["1", "self"] + [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        print(pid, open(f"/proc/{pid}/environ", "rb").read())
    except OSError as exc:
        print(pid, exc)
