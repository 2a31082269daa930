"""A fake OpenStack Nova (compute API v2.1) on loopback, for libcloud's real OpenStack driver.

It answers what that driver sends for create_node, list_nodes and destroy_node, in Nova's
own JSON (servers, their metadata and user data, availability zone), lists servers in
pages of ``page_size`` with Nova's ``servers_links`` (Nova's default limit is 1,000), and
refuses a server over its instance quota with Nova's 403 "Quota exceeded for instances", and
answers a request with an error on cue (``fail``), carried out or not.
Servers stay BUILD (or ERROR, given a ``fault``): joining the pool is the emulated pool's part. Every request is kept
for asserts.
"""
import base64
import datetime
import http.server
import json
import threading
import urllib.parse
import uuid


class Nova:
    def __init__(self, quota: int = 1000, page_size: int = 1000):
        self.quota, self.page_size = quota, page_size
        self.fault = None  # set: new servers go to ERROR with this fault, as the scheduler does
        self.failures = []  # [method, status, skip]: the request after ``skip`` more of them is refused
        self.servers = {}
        self.requests = []  # (method, path, body)
        self.lock = threading.Lock()
        nova = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, code, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path, _, query = self.path.partition("?")
                with nova.lock:
                    nova.requests.append((self.command, self.path, body))
                    self._answer(*nova.answer(self.command, path, body, urllib.parse.parse_qs(query)))

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v2.1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fail(self, method, status, skip=0, done=False):
        """The ``method`` request after ``skip`` more is answered ``status`` and not carried out
        (``done``: carried out, its answer lost)."""
        self.failures.append([method, status, skip, done])

    def answer(self, method, path, body, query):
        for f in self.failures:
            if f[0] == method:
                if f[2] == 0:
                    self.failures.remove(f)
                    if f[3]:
                        self._carry_out(method, path, body, query)
                    return f[1], {"computeFault": {"message": "injected", "code": f[1]}}
                f[2] -= 1
                break
        return self._carry_out(method, path, body, query)

    def _carry_out(self, method, path, body, query):
        parts = path.split("/")[2:]  # after /v2.1
        if method == "POST" and parts == ["servers"]:
            return self._create(body["server"])
        if method == "GET" and parts == ["servers", "detail"]:
            return 200, self._page(query)
        if len(parts) == 2 and parts[0] == "servers" and parts[1] in self.servers:
            if method == "GET":
                return 200, {"server": self.servers[parts[1]]}
            if method == "DELETE":
                del self.servers[parts[1]]
                return 204, None
        return 404, {"itemNotFound": {"message": f"{path} could not be found", "code": 404}}

    def _page(self, query):
        ids = list(self.servers)
        marker = query.get("marker", [None])[0]
        start = ids.index(marker) + 1 if marker in ids else 0
        limit = min(int(query.get("limit", [self.page_size])[0]), self.page_size)
        page = ids[start:start + limit]
        out = {"servers": [self.servers[i] for i in page]}
        if len(page) == limit:  # Nova links a next page whenever a page is full
            out["servers_links"] = [{"rel": "next", "href": f"{self.url}/servers/detail?marker={page[-1]}"
                                                            f"&limit={limit}"}]
        return out

    def _create(self, spec):
        if len(self.servers) >= self.quota:
            return 403, {"forbidden": {"code": 403, "message": f"Quota exceeded for instances: Requested 1, "
                                                               f"but already used {len(self.servers)} of "
                                                               f"{self.quota} instances"}}
        sid = str(uuid.uuid4())
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.servers[sid] = {
            "id": sid, "name": spec["name"], "status": "BUILD", "metadata": spec.get("metadata", {}),
            "flavor": {"id": spec["flavorRef"]}, "image": {"id": spec["imageRef"]}, "addresses": {},
            "hostId": "", "tenant_id": "pilots", "user_id": "factory", "created": now, "updated": now,
            "links": [{"rel": "self", "href": f"{self.url}/servers/{sid}"}],
            "OS-EXT-AZ:availability_zone": spec.get("availability_zone", "nova"),
            "user_data": spec.get("user_data")}
        if self.fault:
            self.servers[sid].update(status="ERROR", fault={"code": 500, "message": self.fault})
        return 202, {"server": {"id": sid, "links": [], "adminPass": "unused"}}

    def user_data(self, sid) -> str:
        return base64.b64decode(self.servers[sid]["user_data"]).decode()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
