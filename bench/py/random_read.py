# argv: <file> <reads> <seed>. Reads 4 KiB at random 4 KiB-aligned offsets
# with pread after POSIX_FADV_RANDOM, so the kernel adds no read-ahead and
# each read reaches the filesystem. Prints {"seconds": ..., "bytes": ...}.
import json
import os
import random
import sys
import time

path, reads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
BLOCK = 4096
fd = os.open(path, os.O_RDONLY)
blocks = os.fstat(fd).st_size // BLOCK
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
rng = random.Random(seed)
offsets = [rng.randrange(blocks) * BLOCK for _ in range(reads)]
total = 0
start = time.perf_counter()
for offset in offsets:
    got = len(os.pread(fd, BLOCK, offset))
    if got != BLOCK:
        sys.exit(f"short read at {offset}: {got} bytes")
    total += got
seconds = time.perf_counter() - start
os.close(fd)
print(json.dumps({"seconds": seconds, "bytes": total}))
