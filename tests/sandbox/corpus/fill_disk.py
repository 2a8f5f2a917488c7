import os
written = 0
try:
    with open("big.bin", "wb") as fh:
        while True:
            fh.write(b"\0" * (1 << 20))
            fh.flush()
            written += 1
except OSError as exc:
    print("stopped at MiB", written, type(exc).__name__)
