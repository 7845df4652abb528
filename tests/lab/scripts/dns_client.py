# DNS-format queries to DST:53, waiting for each answer.
# usage: dns_client.py SRC DST COUNT GAPS LIMIT_SECS [SOCKETS]
# SOCKETS "one": every query from one socket (one source port); "each": a
# new socket per query, so a new source port, as stub resolvers do.
import socket, sys, time, struct
src, dst, n, gaps = sys.argv[1], sys.argv[2], int(sys.argv[3]), [float(g) for g in sys.argv[4].split(",")]
deadline = time.monotonic() + float(sys.argv[5])
per_query = len(sys.argv) > 6 and sys.argv[6] == "each"
fam = socket.AF_INET6 if ":" in src else socket.AF_INET

def new_socket():
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(0.5)
    return s

s = new_socket()
names = ["www.example.com", "mail.example.org", "api.example.net", "cdn.example.com",
         "time.example.org", "updates.example.net", "login.example.com"]
sent = 0
for i in range(n):
    if time.monotonic() > deadline:
        break
    name = names[i % len(names)]
    q = struct.pack(">HHHHHH", (i * 7919) & 0xffff, 0x0100, 1, 0, 0, 0)
    for part in name.split("."):
        q += bytes([len(part)]) + part.encode()
    q += b"\x00" + struct.pack(">HH", 28 if i % 3 == 0 else 1, 1)
    if per_query and i > 0:
        s.close()
        s = new_socket()
    s.sendto(q, (dst, 53))
    sent += 1
    try:
        s.recvfrom(2048)
    except OSError:
        pass
    time.sleep(gaps[i % len(gaps)])
print(sent)
