import socket, sys, time
src, dst, n, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + float(sys.argv[5])
fam = socket.AF_INET6 if ":" in src else socket.AF_INET
users = [b"root", b"admin", b"ubuntu", b"test", b"oracle", b"pi", b"user", b"git"]
done = 0
for i in range(n):
    if time.monotonic() > deadline:
        break
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(1.0)
    try:
        c.bind((src, 0))
        c.connect((dst, 22))
        c.recv(256)
        c.sendall(b"SSH-2.0-libssh2_1.10.0\r\n")
        # A KEXINIT-sized blob and a "password" naming the user tried.
        c.sendall(bytes((i * 31 + k) & 0xff for k in range(96 + i % 64)) + users[i % len(users)])
        done += 1
    except OSError:
        pass
    finally:
        c.close()
    time.sleep(gap)
print(done)
