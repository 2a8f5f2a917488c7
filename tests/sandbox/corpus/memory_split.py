# 4 processes x 100 MB: each is under the 256 MB limit, together they are not
import os, time
for _ in range(3):
    if os.fork() == 0:
        break
data = bytearray(100 << 20)
for i in range(0, len(data), 4096):
    data[i] = 1
time.sleep(5)
