# SNTP clock checks (RFC 4330 client requests, mode 3) to DST:123, each
# from a new socket (a new source port), waiting for each answer.
# usage: ntp_client.py SRC DST COUNT GAP LIMIT_SECS
import os, socket, struct, sys, time

src, dst, n, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + float(sys.argv[5])
fam = socket.AF_INET6 if ":" in src else socket.AF_INET
sent = 0
for i in range(n):
    if time.monotonic() > deadline:
        break
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(0.5)
    # LI 0, version 4, mode 3; the transmit timestamp is random, as clients
    # that hide their clock send it.
    req = bytes([0x23]) + bytes(39) + os.urandom(8)
    s.sendto(req, (dst, 123))
    sent += 1
    try:
        s.recvfrom(512)
    except OSError:
        pass
    s.close()
    time.sleep(gap)
print(sent)
