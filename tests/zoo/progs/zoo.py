# SPDX-License-Identifier: MIT
# zoo.py - python3 for the zoo (tests/zoo, bench/zoo.sh): heavy imports, a
# table of 100000 entries and a pool of 4 threads, all before "ready"; then
# one answer per line of stdin, computed by a pool thread from the table:
#   K  ->  "answer K 3K 100000 threads=5"
import asyncio, decimal, email.parser, http.client, json, sqlite3, ssl, xml.dom.minidom  # noqa: F401
import sys, threading
from concurrent.futures import ThreadPoolExecutor

table = {i: 3 * i for i in range(100000)}
pool = ThreadPoolExecutor(max_workers=4)
# start all 4 workers now: each waits on the barrier until all exist
barrier = threading.Barrier(5)
for _ in range(4):
    pool.submit(barrier.wait)
barrier.wait()
print("ready", flush=True)
for line in sys.stdin:
    k = int(line)
    v = pool.submit(lambda: table[k]).result()
    print("answer", k, v, len(table), "threads=%d" % threading.active_count(), flush=True)
print("eof", flush=True)
