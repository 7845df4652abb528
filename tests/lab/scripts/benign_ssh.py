# An administrator's SSH session with paramiko (Debian's python3-paramiko):
# a key login as root with the lab's client key, then `n` commands, each
# on its own channel of the one connection, `gap` s apart (× a rotating
# factor), and a small file read back over SFTP. Nothing is typed a key at
# a time. Prints the number of commands run.
# args: src dst key n gap limit
import logging, socket, sys, time
import paramiko

logging.getLogger("paramiko").setLevel(logging.CRITICAL)
src, dst, key, n, gap = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
deadline = time.monotonic() + float(sys.argv[6])
fam = socket.AF_INET6 if ":" in src else socket.AF_INET
COMMANDS = ["uptime", "df -h", "cat /proc/loadavg", "ls -la /etc", "uname -a",
            "free -m", "ps aux | head -20", "cat /etc/os-release", "ip -brief address"]
sock = socket.socket(fam, socket.SOCK_STREAM)
sock.settimeout(5.0)
sock.bind((src, 0))
sock.connect((dst, 22))
t = paramiko.Transport(sock)
t.start_client(timeout=5.0)
t.auth_publickey("root", paramiko.Ed25519Key.from_private_key_file(key))
done = 0
for i in range(n):
    if time.monotonic() > deadline:
        break
    ch = t.open_session(timeout=5.0)
    ch.exec_command(COMMANDS[i % len(COMMANDS)])
    while ch.recv(65536):
        pass
    ch.close()
    done += 1
    if i == n // 2:
        sftp = paramiko.SFTPClient.from_transport(t)
        with sftp.open("/etc/services") as f:
            f.read(32768)
        sftp.close()
    time.sleep(gap * [1.0, 0.4, 1.8, 0.7, 1.3][i % 5])
t.close()
print(done)
