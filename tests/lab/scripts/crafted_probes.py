# Crafted probes with scapy (Debian's python3-scapy), one source address:
#   scan: a port scan that rotates its probe type per port: FIN, NULL,
#         XMAS (FIN+PSH+URG), ACK and UDP, `gap` seconds apart;
#   ack:  an ACK scan (pure ACKs, no payload, as a firewall-mapping scan
#         sends) of consecutive ports, `gap` seconds apart;
#   slow: a SYN scan of random ports, one probe every `gap` seconds.
# usage: crafted_probes.py MODE SRC DST COUNT GAP LIMIT_SECS
# Prints how many probes it sent. Every probe goes to DST (the lab's server).
import random, sys, time

from scapy.all import IP, IPv6, TCP, UDP, conf
from scapy.layers.inet6 import L3RawSocket6
from scapy.supersocket import L3RawSocket

conf.verb = 0
mode, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
count, gap, limit = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
deadline = time.monotonic() + limit
v6 = ":" in src
rng = random.Random(src + mode)
# The kernel's raw sockets, so the kernel routes and resolves neighbours
# (scapy's own layer-3 sockets send their own neighbour solicitations from
# the namespace's primary address).
sock = L3RawSocket6() if v6 else L3RawSocket()
if mode == "slow":
    ports = rng.sample(range(1, 10000), count)
else:
    start = rng.randrange(1, 3000)
    ports = list(range(start, start + count))
KINDS = ["F", "", "FPU", "A", "udp"]
sport = rng.randrange(33000, 60000)
sent = 0
for i, port in enumerate(ports):
    if time.monotonic() > deadline:
        break
    ip = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst, ttl=rng.choice([40, 52, 64]))
    if mode == "slow":
        l4 = TCP(sport=sport, dport=port, flags="S", seq=rng.getrandbits(32), window=1024)
    elif mode == "ack":
        l4 = TCP(sport=sport, dport=port, flags="A", seq=rng.getrandbits(32),
                 ack=rng.getrandbits(32), window=1024)
    else:
        kind = KINDS[i % len(KINDS)]
        if kind == "udp":
            l4 = UDP(sport=sport, dport=port)
        else:
            l4 = TCP(sport=sport, dport=port, flags=kind, seq=rng.getrandbits(32), window=1024)
    sock.send(ip / l4)
    sent += 1
    time.sleep(gap)
sock.close()
print(sent)
