import time
end = time.process_time() + 1.0
while time.process_time() < end:
    pass
print("finished")
