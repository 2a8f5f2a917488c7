import os
os.write(1, bytes(range(256)) * 4 + b"\xff\xfe\x00end")
