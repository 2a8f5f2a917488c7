import sys
sys.stdout.write("a" * (50 << 20))
