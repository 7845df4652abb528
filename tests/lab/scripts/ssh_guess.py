# SSH password guessing with paramiko (Debian's python3-paramiko), the
# library many guessing bots are built on: per connection a full key
# exchange, then 1-3 passwords (lane k tries k % 3 + 1), each refused by
# the lab's sshd; `lanes` connections at a time, each lane pausing `gap` s
# between connections, until `n` guesses or `limit` seconds. Prints the
# number of guesses made.
# args: src dst n gap limit lanes
import logging, socket, sys, threading, time
import paramiko

logging.getLogger("paramiko").setLevel(logging.CRITICAL)
src, dst, n, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + float(sys.argv[5])
lanes = int(sys.argv[6])
fam = socket.AF_INET6 if ":" in src else socket.AF_INET
USERS = ["root", "admin", "ubuntu", "test", "oracle", "pi", "user", "git", "postgres", "deploy"]
PASSWORDS = ["123456", "password", "admin", "root", "qwerty", "letmein", "12345678",
             "welcome", "changeme", "P@ssw0rd", "toor", "raspberry"]
lock = threading.Lock()
taken = 0  # guesses handed out (the budget)
made = 0   # guesses the server answered

def take():
    global taken
    with lock:
        if taken >= n or time.monotonic() > deadline:
            return None
        taken += 1
        return taken - 1

def answered():
    global made
    with lock:
        made += 1

def lane(k):
    tries = k % 3 + 1
    while True:
        i = take()
        if i is None:
            return
        user = USERS[i % len(USERS)]
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.settimeout(3.0)
        t = None
        try:
            sock.bind((src, 0))
            sock.connect((dst, 22))
            t = paramiko.Transport(sock)
            t.start_client(timeout=3.0)
            for j in range(tries):
                if j > 0 and take() is None:
                    break
                try:
                    t.auth_password(user, PASSWORDS[(i + j) % len(PASSWORDS)])
                except paramiko.AuthenticationException:
                    pass
                answered()
        except (OSError, paramiko.SSHException, EOFError):
            pass
        finally:
            if t is not None:
                t.close()
            sock.close()
        time.sleep(gap)

threads = [threading.Thread(target=lane, args=(k,)) for k in range(lanes)]
for th in threads:
    th.start()
for th in threads:
    th.join()
print(made)
