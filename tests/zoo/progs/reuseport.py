# SPDX-License-Identifier: MIT
# reuseport.py PORT - a small HTTP server of the zoo that listens with
# SO_REUSEPORT (socketserver's allow_reuse_port), as servers meant to run
# as several processes on one port do. GET / answers "pid PID warm W": the
# serving process's pid, and a value computed during warm-up.
import http.server
import os
import socketserver
import sys

warm = sum(i * i for i in range(200000)) % 9973   # the "warm-up"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("pid %d warm %d\n" % (os.getpid(), warm)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.TCPServer):
    allow_reuse_address = True
    allow_reuse_port = True


srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
srv.serve_forever()
