import sys
data = sys.stdin.read()  # stdin is closed unless given: EOF at once, never a hang
print("read", len(data))
