# a first submission leaves the answer behind for a later one (test_leftover_files_do_not_reach_the_next_run)
import os
for d in (".", os.path.expanduser("~"), "/tmp"):
    try:
        open(os.path.join(d, "answer.txt"), "w").write("42")
    except OSError:
        pass
def add(a, b):
    return 0
