"""An interactive SSH session: OpenSSH's client with a key and a
pseudo-terminal; each command is typed a key at a time (one packet per
keystroke, as a person makes), then the session pauses.
args: key user host port keydelay_ms_lo keydelay_ms_hi pauses(comma) command..."""
import random
import subprocess
import sys
import time

key, user, host, port = sys.argv[1:5]
lo, hi = int(sys.argv[5]), int(sys.argv[6])
pauses = [float(p) for p in sys.argv[7].split(",")]
commands = sys.argv[8:] + ["exit"]
rnd = random.Random(" ".join(sys.argv[5:]))
ssh = subprocess.Popen(
    ["ssh", "-tt", "-i", key, "-p", port, "-o", "BatchMode=yes",
     "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
     "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "%s@%s" % (user, host)],
    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.0)
typed = 0
for i, c in enumerate(commands):
    for ch in c + "\n":
        ssh.stdin.write(ch.encode())
        ssh.stdin.flush()
        time.sleep(rnd.randint(lo, hi) / 1000.0)
    typed += 1
    time.sleep(pauses[i % len(pauses)])
ssh.stdin.close()
ssh.wait(timeout=10)
print(typed if ssh.returncode == 0 else 0)
sys.exit(0 if ssh.returncode == 0 else 1)
