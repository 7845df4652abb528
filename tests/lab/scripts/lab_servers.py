import socket, struct, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

PAGE = (b"<!doctype html><html><head><title>PhantomNet lab</title></head><body>"
        + b"<h1>Welcome</h1><p>" + b"Lorem ipsum dolor sit amet. " * 40 + b"</p></body></html>\n")

MISSING = {"/favicon.ico", "/apple-touch-icon.png", "/news/2023/11/old-article.html"}

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def html(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            got = self.rfile.read(min(n, 65536))
            if not got:
                break
            n -= len(got)
        path = self.path.split("?", 1)[0]
        if path.startswith("/admin"):
            # Basic auth that no guess list holds.
            body = b"authorization required\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="lab admin"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if path == "/status":
            # A health endpoint: a tiny JSON answer, headers and body in
            # one write (one segment), as nginx or an embedded server sends
            # a small response.
            body = b'{"status":"up"}\n'
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body))
            self.wfile.write(head + (b"" if self.command == "HEAD" else body))
            return
        if path in MISSING:
            # What a real site does not have: a browser's favicon and
            # touch icon, a link that went stale. 404, as nginx says it.
            self.html(404, b"<html><head><title>404 Not Found</title></head></html>\n")
            return
        if path.startswith("/files/"):
            try:
                size = min(int(path.rsplit("/", 1)[1]), 128 << 20)
            except ValueError:
                size = 0
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = bytes(range(256)) * 256
            while size > 0:
                self.wfile.write(chunk[:min(size, len(chunk))])
                size -= len(chunk)
            return
        self.html(200, PAGE * (1 + len(path) % 4))
    do_GET = do_POST = do_HEAD = do_PUT = reply

class Dual(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True
    def handle_error(self, request, client_address):
        pass
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

def listener(port, kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    if kind == socket.SOCK_STREAM:
        s.listen(512)
    return s

def serve_tcp(s, handle):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

def sink(c):
    try:
        c.settimeout(10.0)
        while c.recv(1 << 16):
            pass
    except OSError:
        pass
    finally:
        c.close()

def dns(s):
    while True:
        q, peer = s.recvfrom(2048)
        if len(q) >= 12:
            r = bytearray(q)
            r[2] |= 0x80
            r[7] = 1
            r += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xcb\x00\x71\x0a"
            s.sendto(bytes(r), peer)

def ntp(s):
    # An SNTP server's answer (mode 4, stratum 2) echoing the request's
    # transmit timestamp as the origin timestamp.
    while True:
        q, peer = s.recvfrom(512)
        if len(q) >= 48:
            now = int((time.time() + 2208988800) * (1 << 32))
            stamp = struct.pack(">Q", now)
            r = bytes([0x24, 2, q[2], 0xec]) + bytes(8) + b"LOCL" + stamp + q[40:48] + stamp + stamp
            s.sendto(r, peer)

def udp_sink(s):
    while True:
        s.recvfrom(65536)

http = Dual(("::", 80), H)
for target, args in [
    (http.serve_forever, ()),
    (serve_tcp, (listener(9000, socket.SOCK_STREAM), sink)),
    (dns, (listener(53, socket.SOCK_DGRAM),)),
    (ntp, (listener(123, socket.SOCK_DGRAM),)),
    (udp_sink, (listener(5000, socket.SOCK_DGRAM),)),
]:
    threading.Thread(target=target, args=args, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
