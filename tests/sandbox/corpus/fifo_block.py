import os
os.mkfifo("pipe")
open("pipe").read()  # no writer ever comes: blocks until the wall limit
