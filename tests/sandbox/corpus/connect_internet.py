import socket
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2)  # TEST-NET-1: never routed
    print("CONNECTED")
except OSError as exc:
    print("blocked", exc)
