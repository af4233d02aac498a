"""Makes a pool of distinct sessions: GETs /create COUNT times on one kept-alive connection
and writes each response's first Set-Cookie pair (name=value) as a line of OUT.
    python3 Scripts/lib/make-pool.py PORT COUNT OUT"""
import http.client
import sys

port, count, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
connection = http.client.HTTPConnection("127.0.0.1", port)
cookies = []
for _ in range(count):
    connection.request("GET", "/create")
    response = connection.getresponse()
    response.read()
    field = response.getheader("Set-Cookie")
    if response.status != 200 or not field:
        sys.exit(f"make-pool: /create answered {response.status} without a cookie")
    cookies.append(field.split(";", 1)[0])
if len(set(cookies)) != count:
    sys.exit("make-pool: the sessions are not distinct")
with open(out, "w") as pool:
    pool.write("\n".join(cookies) + "\n")
