"""The frame size of each async function in a binary, largest first: what a call of it takes
from its task's allocator (slabs of 984 bytes; a larger frame costs a malloc of its own size).
Read from each async function pointer (the `...Tu` symbols: a 32-bit relative offset to the
function, then the 32-bit size of its context).
    python3 Scripts/lib/async-frames.py BINARY [REGEX] [COUNT]
REGEX filters the demangled names (say, 'SessionManager|RequestSession'); COUNT (40) rows."""
import re
import struct
import subprocess
import sys

binary = sys.argv[1]
wanted = re.compile(sys.argv[2] if len(sys.argv) > 2 else "")
count = int(sys.argv[3]) if len(sys.argv) > 3 else 40

symbols = []
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
    fields = line.split(None, 2)
    if len(fields) == 3 and fields[2].endswith("Tu"):
        symbols.append((int(fields[0], 16), fields[2]))
# Virtual addresses to file offsets, from the loadable segments.
segments = []
for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True).stdout.splitlines():
    fields = line.split()
    if fields and fields[0] == "LOAD":
        segments.append((int(fields[2], 16), int(fields[1], 16), int(fields[4], 16)))
names = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(name[:-2] for _, name in symbols),
                       capture_output=True, text=True).stdout.splitlines()
data = open(binary, "rb").read()
rows = []
for (address, _), name in zip(symbols, names):
    if not wanted.search(name):
        continue
    for start, offset, size in segments:
        if start <= address < start + size:
            _, context = struct.unpack("<iI", data[offset + address - start:offset + address - start + 8])
            rows.append((context, name))
            break
for context, name in sorted(rows, reverse=True)[:count]:
    print(f"{context:6d} {name[:150]}")
