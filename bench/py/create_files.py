# argv: <directory> <count> <bytes per file>. Prints {"seconds": ...}, timed
# from the first create to the last close, without interpreter start-up.
import json
import os
import sys
import time

directory, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(size)
start = time.perf_counter()
for i in range(count):
    with open(os.path.join(directory, f"file-{i:05d}"), "wb") as f:
        f.write(data)
print(json.dumps({"seconds": time.perf_counter() - start}))
