"""Loopback server for the bats tests: serves a directory over HTTP, or with
--hang accepts connections and never answers. Prints its port once listening."""
import argparse
import functools
import http.server
import socket
import sys


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def hang():
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    held = []
    while True:
        held.append(server.accept()[0])


def serve(directory):
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir")
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    hang() if args.hang else serve(args.dir)


if __name__ == "__main__":
    main()
