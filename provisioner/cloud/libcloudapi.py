"""Any libcloud compute provider as a VM back end: the driver by name, its options from
the queue config, the factory's tags as node metadata/tags.

The driver comes from ``services.extra["libcloud"]`` when present (a callable taking
``(provider, key, secret, **driver_options)``), else from libcloud's ``get_driver``.
Providers whose API launches one node per call get one call per VM (the API forces it).
"""
import inspect
import re
import socket
from typing import List

from provisioner.cloud import retry, tags
from provisioner.cloud.ec2api import FALLBACK, QUOTA, client_token, crash_hook
from provisioner.cloud.lifecycle import Instance
from provisioner.errors import ProvisionerError
from provisioner.plugins import did_you_mean

# The create_node keywords of the user data and the tags; a driver without them is refused.
USER_DATA, TAGS = "ex_userdata", "ex_metadata"
_STATES = {"pending": "pending", "starting": "pending", "running": "running", "rebooting": "running",
           "stopping": "stopping", "stopped": "stopped", "suspended": "stopped", "paused": "stopped",
           "error": "error", "terminated": "terminated"}
# libcloud's OpenStack driver for Nova API 2.x pages through the servers; the 1.x ones do not.
OPENSTACK_API = "2.2"
_THROTTLED = {"RequestLimitExceeded", "Throttling", "ServiceUnavailable", "InternalError", "Unavailable"}
# Quota refusals of providers without EC2's codes: Nova's 403 "Quota exceeded for cores: ...".
_QUOTA_TEXT = re.compile(r"quota exceeded", re.I)
_KWARG = re.compile(r"""kwargs\.(?:get|pop)\(\s*["'](\w+)["']""")  # an option a driver reads from **kwargs


def _value(text: str):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    return int(text) if text.strip().isdigit() else text.strip()


def _text(exc) -> str:
    return str(getattr(exc, "message", "") or exc)


def _code(exc) -> str:
    """The provider's error code: libcloud puts it first in the message ("Code: text")."""
    head = _text(exc).split(":", 1)[0].strip()
    return head if head and " " not in head else type(exc).__name__


class LibcloudBackend:
    def __init__(self, opts, services):
        self.opts, self.services = opts, services
        self.provider = opts["provider"].lower()
        self.driver_options = {k[len("driver."):]: _value(v) for k, v in opts.items() if k.startswith("driver.")}
        if self.provider == "openstack":
            self.driver_options.setdefault("api_version", OPENSTACK_API)
        # one listing per account: the key, or the credentials file that names it
        self.key = ("libcloud", self.provider, opts["key"], opts["credentials_file"],
                    tuple(sorted(self.driver_options.items())))
        self._driver = None
        self._launched = {}  # node id -> launch time, for nodes without a creation time

    def _credentials(self):
        key, secret = self.opts["key"], self.opts["secret"]
        if self.opts["credentials_file"]:
            values = {}
            with open(self.opts["credentials_file"]) as fh:
                for line in fh:
                    k, sep, v = line.partition("=")
                    if sep:
                        values[k.strip()] = v.strip()
            key, secret = values.get("key", key), values.get("secret", secret)
        return key, secret

    @property
    def driver(self):
        if self._driver is None:
            key, secret = self._credentials()
            factory = self.services.extra.get("libcloud")
            if factory is None:
                from libcloud.compute.providers import get_driver

                def factory(provider, k, s, **kw):
                    return get_driver(provider)(k, s, **kw)
            self._driver = factory(self.provider, key, secret, **self.driver_options)
        return self._driver

    def validate(self, where: str) -> None:
        from libcloud.compute.providers import get_driver

        try:
            cls = get_driver(self.provider)
        except AttributeError:
            raise ProvisionerError(f"{where}provider: libcloud has no compute provider {self.provider!r}") from None
        check_create_node(cls, self.provider, where)
        check_driver_options(cls, self.provider, self.driver_options, where)
        if self.provider != "openstack" and _one_page(cls):
            raise ProvisionerError(f"{where}provider: {self.provider} is not supported: libcloud's {self.provider} "
                                   f"driver lists only the first page of servers (1,000 by default), so VMs past it "
                                   f"would go unseen")
        version = str(self.driver_options.get("api_version"))
        if self.provider == "openstack" and version not in ("2.0", "2.1", "2.2"):
            why = (f"libcloud's OpenStack {version} driver lists only Nova's first page of servers (1,000 by "
                   f"default), so VMs past it would go unseen" if version in ("1.0", "1.1")
                   else f"libcloud has no OpenStack driver for API version {version}")
            raise ProvisionerError(f"{where}driver.api_version: {why}; leave it unset for {OPENSTACK_API}")
        if self.opts["credentials_file"]:
            try:
                self._credentials()
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or "not a text file"
                raise ProvisionerError(f"{where}credentials_file: cannot read {self.opts['credentials_file']}: "
                                       f"{why}") from None

    def choices(self, types):
        places = self.opts["zones"] or [None]
        return [(t, p) for t in types for p in places]

    def launch(self, count, itype, place, token, tagset, user_data) -> List[str]:
        from libcloud.compute.base import NodeImage, NodeSize

        d = self.driver
        image = NodeImage(id=self.opts["image"], name=None, driver=d)
        size = NodeSize(id=itype.name, name=itype.name, ram=itype.memory, disk=None, bandwidth=None,
                        price=itype.price, driver=d)
        kwargs = {TAGS: dict(tagset), USER_DATA: user_data, **(_placement(d, place) if place else {})}
        name = f"{tagset[tags.FACTORY]}-{tagset[tags.QUEUE]}".replace("_", "-").lower()
        if self.provider == "ec2":
            kwargs.update(ex_mincount=count, ex_maxcount=count, ex_clienttoken=client_token(token),
                          ex_terminate_on_shutdown=True)
            if self.opts["market"] == "spot":
                kwargs.update(ex_spot=True, ex_spot_max_price=self.opts["spot_max_price"])
            nodes = d.create_node(name=name, size=size, image=image, **kwargs)
            nodes = nodes if isinstance(nodes, list) else [nodes]
        else:
            nodes = []
            for i in range(count):
                try:
                    nodes.append(d.create_node(name=f"{name}-{i}", size=size, image=image, **kwargs))
                except Exception as exc:
                    # A lost answer may hide a node made (no client token here): raised, so the retry
                    # adopts this call's nodes by their launch tag instead of making one more.
                    if not nodes or self.ambiguous(exc):
                        raise
                    break  # the nodes made count (a quota filled up); the next call meets the refusal
        crash_hook(nodes)
        return [n.id for n in nodes]

    def _nodes(self, **match):
        if self.provider == "ec2":
            filters = {f"tag:{k}": v for k, v in match.items()}
            nodes = self.driver.list_nodes(ex_filters=filters)
        else:
            nodes = self.driver.list_nodes()
        return [n for n in nodes if all(_tags(n).get(k) == v for k, v in match.items())]

    def launched(self, launch_id: str) -> List[str]:
        return [n.id for n in self._nodes(**{tags.LAUNCH: launch_id})]

    def list(self, factory_id: str) -> List[Instance]:
        out = []
        for n in self._nodes(**{tags.FACTORY: factory_id}):
            t = _tags(n)
            state = _STATES.get(str(n.state).lower().split(".")[-1], "running")
            if state == "terminated":
                continue
            launched = n.created_at.timestamp() if n.created_at else self._launch_time(t.get(tags.LAUNCH), n.id)
            out.append(Instance(n.id, t.get(tags.QUEUE, ""), t.get(tags.LAUNCH, ""),
                                n.extra.get("instance_type") or n.extra.get("flavorId") or "", state, launched,
                                t.get(tags.STATE) == "draining", t.get(tags.COLLECTOR)))
        listed = {i.id for i in out}  # the nodes gone are forgotten, or months of them pile up
        self._launched = {k: v for k, v in self._launched.items() if k in listed}
        return out

    def _launch_time(self, launch_id, iid) -> float:
        """For drivers whose nodes carry no creation time: the
        ledger's time of the launch that tagged the node, else when this factory first saw it,
        so a node that never joins still reaches its boot timeout."""
        if iid not in self._launched:  # looked up once, not at every listing
            ledger = self.services.ledger
            at = ledger.launch_time(launch_id) if ledger is not None and launch_id else None
            self._launched[iid] = at if at is not None else self.services.clock.now()
        return self._launched[iid]

    def _node(self, iid):
        from libcloud.compute.base import Node

        return Node(id=iid, name=iid, state=None, public_ips=[], private_ips=[], driver=self.driver)

    def terminate(self, ids) -> None:
        for iid in ids:
            try:
                self.driver.destroy_node(self._node(iid))
            except Exception as exc:
                if retry.status(exc) != 404:  # gone already: deleted by a retried call whose answer was lost
                    raise

    def tag(self, ids, tagset) -> None:
        if hasattr(self.driver, "ex_create_tags"):
            for iid in ids:
                self.driver.ex_create_tags(self._node(iid), tagset)

    # --- errors -----------------------------------------------------------------------------
    @staticmethod
    def transient(exc) -> bool:
        from libcloud.common.exceptions import RateLimitReachedError

        if isinstance(exc, (RateLimitReachedError, socket.error, ConnectionError)):
            return True
        if _code(exc) in retry.CAPACITY:  # a 500 from EC2, but an answer: the next choice
            return False
        return _code(exc) in _THROTTLED or retry.status(exc) >= 500 or retry.status(exc) == 429

    def ambiguous(self, exc) -> bool:
        return self.transient(exc) and _code(exc) != "RequestLimitExceeded"

    def kind(self, exc) -> str:
        if _code(exc) in FALLBACK:
            return "fallback"
        if _code(exc) in QUOTA or _QUOTA_TEXT.search(_text(exc)):
            return "quota"
        return "transient" if self.transient(exc) else "fatal"

    @staticmethod
    def describe(exc) -> str:
        text = " ".join(_text(exc).split())
        code = _code(exc)
        return text if text.startswith(code) else f"{code}: {text}"


def _one_page(cls) -> bool:
    """A driver built on libcloud's OpenStack 1.1 one, whose listing reads one page (rackspace)."""
    from libcloud.compute.drivers.openstack import OpenStack_1_1_NodeDriver

    return issubclass(cls, OpenStack_1_1_NodeDriver) and cls.list_nodes is OpenStack_1_1_NodeDriver.list_nodes


def _placement(driver, place: str) -> dict:
    """A zone as the driver takes it: OpenStack's by name, the EC2 family's
    as a location carrying the zone (a bare location is silently ignored), others' as a location."""
    from libcloud.compute.base import NodeLocation
    from libcloud.compute.drivers.ec2 import BaseEC2NodeDriver, ExEC2AvailabilityZone

    if "ex_availability_zone" in inspect.signature(driver.create_node).parameters:
        return {"ex_availability_zone": place}
    location = NodeLocation(id=place, name=place, country=None, driver=driver)
    if isinstance(driver, BaseEC2NodeDriver):
        location.availability_zone = ExEC2AvailabilityZone(place, "available", driver.region_name)
    return {"location": location}


def _family(cls) -> set:
    """The driver class, its bases and its subclasses (with theirs): some drivers (openstack,
    digitalocean) become a subclass chosen by an option, so what any of those takes counts."""
    family, todo = set(cls.__mro__[:-1]), [cls]  # not object
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in family:
                family |= set(sub.__mro__[:-1])
                todo.append(sub)
    return family


def check_create_node(cls, provider, where) -> None:
    """A provider whose driver needs more than this target gives to create a node, or cannot
    be given the user data (the wrapper that joins a VM to the pool) and the tags (how a
    restarted factory finds its VMs), is refused at start-up."""
    needed = [n for n, p in list(inspect.signature(cls.create_node).parameters.items())[4:]
              if p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD]
    if needed:  # azure_arm: auth, ex_resource_group
        raise ProvisionerError(f"{where}provider: {provider} is not supported: libcloud's {provider} driver needs "
                               f"{', '.join(needed)} to create a node, which this target does not give")
    taken = set()
    for klass in _family(cls):
        create = klass.__dict__.get("create_node")
        if create is not None:
            taken |= set(inspect.signature(create).parameters)
    for kw, what in ((USER_DATA, "user data"), (TAGS, "tags")):
        if kw not in taken:
            raise ProvisionerError(f"{where}provider: {provider} is not supported: this target cannot give its "
                                   f"VMs their {what} through libcloud's {provider} driver")


def check_driver_options(cls, provider, options, where) -> None:
    """Refuse a ``driver.*`` option the driver would not take (libcloud drivers drop unknown
    keywords silently: a misspelt region would launch elsewhere) or one it requires and lacks.
    A driver is called as ``cls(key, secret, **options)``, so its first two parameters come
    from ``key`` and ``secret``."""
    accepted = set()
    for klass in _family(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        accepted |= {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        try:
            accepted |= set(_KWARG.findall(inspect.getsource(init)))
        except (OSError, TypeError):
            return  # no source to read what it takes from **kwargs: let the driver judge
    params = [(n, p) for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"]
    given = {n for n, _ in params[:2]}
    for name in options:
        if name in given:
            raise ProvisionerError(f"{where}driver.{name}: libcloud's {provider} driver gets it from the "
                                   f"{'key' if name == params[0][0] else 'secret'} option")
        if name not in accepted - {"self"}:
            raise ProvisionerError(f"{where}driver.{name}: libcloud's {provider} driver takes no such option"
                                   f"{did_you_mean(name, sorted(accepted - given - {'self'}))}")
    for name, p in params[2:]:
        if p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD and name not in options:
            raise ProvisionerError(f"{where}driver.{name}: required by libcloud's {provider} driver")


def _tags(node) -> dict:
    extra = node.extra or {}
    return extra.get("tags") or extra.get("metadata") or extra.get("labels") or {}
