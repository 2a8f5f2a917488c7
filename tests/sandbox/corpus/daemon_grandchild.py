# classic double fork: the grandchild outlives its parent and would keep running forever
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "987"])
    os._exit(0)
print("parent done")
