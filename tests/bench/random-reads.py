#!/usr/bin/env python3
"""random-reads.py FILE OFFSETS_FILE: reads 4 KiB at each offset (one per line) with O_DIRECT,
so that neither the kernel page cache nor read-ahead helps, and prints each latency in ms."""
import mmap, os, sys, time

path, offsets = sys.argv[1], [int(l) for l in open(sys.argv[2]) if l.strip()]
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
try:
    for off in offsets:
        t0 = time.perf_counter()
        n = os.preadv(fd, [buf], off)
        dt = time.perf_counter() - t0
        if n != 4096:
            sys.exit("short read at %d: %d bytes" % (off, n))
        print("%.3f" % (dt * 1000))
finally:
    os.close(fd)
