"""Real HTTP cloud fixtures: moto_server on loopback, a fault proxy in front of it (which
also adapts moto's XML namespace for libcloud - a test-only concern), and factories
wired to them in virtual time."""
import http.client
import http.server
import socket
import textwrap
import threading
import time
import urllib.parse
import urllib.request

import boto3
import pytest

from provisioner import config as configmod
from provisioner.clock import VirtualClock
from provisioner.condor.emulator import Pool
from provisioner.factory import Factory
from provisioner.ledger import Ledger
from provisioner.services import Services

AMI = "ami-12c6146b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def moto(moto_url, monkeypatch):
    """A clean moto (POST /moto-api/reset) and credentials in the environment."""
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST"), timeout=10)
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_url


@pytest.fixture
def ec2(moto):
    return boto3.client("ec2", endpoint_url=moto, region_name="us-east-1")


def _error_body(code):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
            f'<Message>injected {code}</Message></Error></Errors><RequestID>fault</RequestID></Response>').encode()


class FaultProxy:
    """Forwards to moto; counts calls by Action; ``fail(action, code, status, times, after=False,
    match=None)`` answers an error instead (``after``: once moto has carried the call out);
    ``hold(action)`` keeps the next call of an action from moto until the test releases it.
    ``namespace=True`` gives moto's xmlns the trailing slash libcloud expects. ``vcpu_quota``
    (moto has none) refuses, as AWS does, a RunInstances whose MinCount would take the
    pending and running instances beyond that many vCPUs (their types' cores per ``cpus``)."""

    def __init__(self, upstream):
        self.upstream = urllib.parse.urlparse(upstream)
        self.calls, self.faults, self.lock = {}, [], threading.Lock()
        self.namespace = False
        self.vcpu_quota, self.cpus = None, {"m5.2xlarge": 8, "c5.2xlarge": 8}
        self.sizes = []  # MinCount of every RunInstances, in order
        self.held, self.holds = {}, []  # action -> events of its next call (``hold``); every hold
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = urllib.parse.urlparse(self.path).query
                params = urllib.parse.parse_qs(body.decode() + "&" + query)
                action = params.get("Action", [""])[0]
                fault = proxy._take(action, params)
                held = proxy.held.pop(action, None)
                if held:  # the caller may be gone by the release: the cloud carries it out all the same
                    held["arrived"].set()
                    held["release"].wait(60)
                if action == "RunInstances":
                    proxy.sizes.append(int(params["MinCount"][0]))
                    if proxy._over_quota(params):
                        return self._send(400, _error_body("VcpuLimitExceeded"))
                if fault and not fault["after"]:
                    return self._send(fault["status"], _error_body(fault["code"]))
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                headers["Host"] = self.headers.get("Host", "")
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if fault:
                    return self._send(fault["status"], _error_body(fault["code"]))
                if proxy.namespace:
                    data = data.replace(b"doc/2016-11-15\"", b"doc/2016-11-15/\"")
                if held:
                    held["done"].set()
                try:
                    self._send(resp.status, data, resp.getheader("Content-Type", "text/xml"))
                except OSError:  # a caller killed while its call was held
                    pass

            do_GET = do_POST = _any

            def _send(self, status, data, ctype="text/xml"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _take(self, action, params):
        with self.lock:
            self.calls[action] = self.calls.get(action, 0) + 1
            for f in self.faults:
                if f["action"] == action and f["times"] > 0 and all(
                        params.get(k, [None])[0] == v for k, v in (f["match"] or {}).items()):
                    f["times"] -= 1
                    return f
        return None

    def _over_quota(self, params) -> bool:
        if self.vcpu_quota is None:
            return False
        client = boto3.client("ec2", endpoint_url=self.upstream.geturl(), region_name="us-east-1")
        live = client.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
        used = sum(self.cpus[i["InstanceType"]] for r in live["Reservations"] for i in r["Instances"])
        return used + int(params["MinCount"][0]) * self.cpus[params["InstanceType"][0]] > self.vcpu_quota

    def fail(self, action, code, status=400, times=1, after=False, match=None):
        self.faults.append(dict(action=action, code=code, status=status, times=times, after=after, match=match))

    def hold(self, action):
        """The next ``action`` call waits before reaching moto: ``arrived`` is set when it has come,
        it goes on once ``release`` is set, and ``done`` is set when moto has carried it out."""
        events = {k: threading.Event() for k in ("arrived", "release", "done")}
        self.held[action] = events
        self.holds.append(events)
        return events

    def close(self):
        for events in self.holds:
            events["release"].set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(moto):
    p = FaultProxy(moto)
    yield p
    p.close()


QUEUE = """
[{name}]
wmsstatusplugin = Condor
batchstatusplugin = Cloud
schedplugin = VMDemand, MaxPerCycle
sched.maxpercycle.maximum = 2000
batchsubmitplugin = EC2
batchsubmit.ec2.endpoint_url = {endpoint}
batchsubmit.ec2.ami_id = {ami}
batchsubmit.ec2.instance_types = {types}
batchsubmit.ec2.collector = cm.example.org
batchsubmit.ec2.boot_timeout = 600
executable.arguments = --wrappergrid=cloud --wrapperqueue={name}
{extra}
"""


def ec2_queue(name="CLOUD", endpoint="", types="m5.2xlarge", ami=AMI, extra=""):
    return QUEUE.format(name=name, endpoint=endpoint, types=types, ami=ami, extra=textwrap.dedent(extra))


LIBCLOUD_QUEUE = """
[{name}]
wmsstatusplugin = Condor
batchstatusplugin = Cloud
schedplugin = VMDemand
batchsubmitplugin = Libcloud
batchsubmit.libcloud.provider = {provider}
batchsubmit.libcloud.image = {image}
batchsubmit.libcloud.instance_types = m5.2xlarge
{extra}
"""


def libcloud_queue(name, provider, image, extra=""):
    return LIBCLOUD_QUEUE.format(name=name, provider=provider, image=image, extra=textwrap.dedent(extra))


class CloudWorld:
    """A factory, its emulated pool and ledger, in virtual time starting now."""

    def __init__(self, conf_path, tmp_path, extra=None, clock=None, pool=None):
        self.conf_path, self.tmp_path, self.extra = conf_path, tmp_path, extra
        self.cfg = configmod.load(conf_path)
        self.clock = clock or VirtualClock(time.time())
        self.pool = pool or Pool(self.clock)
        self.sleeps = []

        def sleep(seconds):  # back-off waits skip ahead in virtual time
            self.sleeps.append(seconds)
            self.clock.advance_to(self.clock.now() + seconds)

        self.services = Services(self.cfg.factory_id, self.clock, self.pool, log_dir=str(tmp_path / "logs"),
                                 extra={"sleep": sleep, **(extra or {})})
        self.ledger = Ledger(str(tmp_path / "ledger.sqlite"), self.cfg.factory_id)
        self.factory = Factory(self.cfg, self.services, self.ledger)

    def restart(self):
        """The daemon restarts: a new factory on the same ledger file, clock, pool and cloud."""
        self.ledger.close()
        return CloudWorld(self.conf_path, self.tmp_path, self.extra, self.clock, self.pool)

    def cycle(self, advance=60.0):
        decisions = self.factory.cycle()
        self.clock.advance_to(self.clock.now() + advance)
        for q in self.factory.queues:
            q.next_due = min(q.next_due, self.clock.now())
        return {d.queue: d for d in decisions}


@pytest.fixture
def cloud_world(write_conf, tmp_path):
    def build(queues, extra=None, factory_id="test-factory"):
        return CloudWorld(write_conf(queues, factory_id=factory_id), tmp_path, extra)

    return build


def instances(client, **tag_filters):
    filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tag_filters.items()]
    filters.append({"Name": "instance-state-name", "Values": ["pending", "running"]})
    out = []
    for page in client.get_paginator("describe_instances").paginate(Filters=filters):
        for r in page["Reservations"]:
            out += r["Instances"]
    return out


def join_all(pool, client, cpus=8, memory=32768, now=None):
    """The VMs boot: each moto instance's startd appears in the emulated pool."""
    from provisioner.cloud.emulator import add_machine

    have = {ad.get("EC2InstanceId") for ad in pool.machines.values()}
    for i in instances(client):
        if i["InstanceId"] not in have:
            t = {x["Key"]: x["Value"] for x in i.get("Tags", [])}
            add_machine(pool, i["InstanceId"], cpus, memory, 0, t, now or time.time())



@pytest.fixture
def nova():
    from .nova import Nova

    fake = Nova()
    yield fake
    fake.close()
