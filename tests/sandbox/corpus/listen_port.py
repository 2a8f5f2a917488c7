import socket, time
port = int(input())
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen()
print("listening", flush=True)
s.settimeout(2.0)
try:
    s.accept()
    print("ACCEPTED")
except OSError:
    pass
