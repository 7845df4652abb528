"""An API client: JSON POSTs and GETs on one keep-alive connection
(http.client), as an SDK would; the bodies hold quotes and SQL-looking
words. args: host port gaps(comma) body..."""
import http.client
import json
import sys
import time

host, port, gaps = sys.argv[1], int(sys.argv[2]), [float(g) for g in sys.argv[3].split(",")]
bodies = sys.argv[4:]
conn = None
sent = 0
for i, body in enumerate(bodies):
    try:
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=3)
        if i % 4 == 3:
            conn.request("GET", "/api/items?page=%d&sort=name" % (i // 4 + 1),
                         headers={"Accept": "application/json", "User-Agent": "lab-sdk/2.4"})
        else:
            json.loads(body)
            conn.request("POST", "/api/notes", body=body.encode(),
                         headers={"Content-Type": "application/json", "User-Agent": "lab-sdk/2.4"})
        conn.getresponse().read()
        sent += 1
    except (OSError, http.client.HTTPException):
        conn = None
    time.sleep(gaps[i % len(gaps)])
print(sent)
