"""One pinned, key-authenticated SSH connection per remote account, reused across cycles.

Security model: the server's host key must already be in the configured
known_hosts file (no trust on first use, unlike APF's ``StrictHostKeyChecking
no``); only the configured private key is offered (no agent, no ~/.ssh); every
argument is shell-quoted, so no configured value can add a remote command.
"""
import logging
import shlex
import socket
import time
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import paramiko

from provisioner.errors import ProvisionerError

# Every failure is raised as one SSHError line; paramiko would also log each (re)connection and,
# from its own thread, a many-line traceback of a server that never answers.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class SSHError(ProvisionerError):
    """The remote account could not be reached or refused us; the message is one line."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str
    key: str  # private key file
    known_hosts: str
    timeout: float = 30.0
    passphrase_file: Optional[str] = None  # for a passphrase-protected key
    keepalive: int = 60  # seconds; keeps a NAT or firewall from dropping the idle connection

    def __str__(self) -> str:
        return f"ssh {self.user}@{self.host}:{self.port}"


class KeyProblem(Exception):
    """The key cannot be loaded; ``option`` names the option to fix (key or passphrase_file)."""

    def __init__(self, option: str, text: str):
        super().__init__(text)
        self.option = option


def load_key(ep: Endpoint) -> paramiko.PKey:
    """The private key, opened with the passphrase from ``passphrase_file`` if it needs one."""
    try:
        return paramiko.PKey.from_path(ep.key)
    except TypeError:  # paramiko's way of saying the key is encrypted
        if ep.passphrase_file is None:
            raise KeyProblem("key", f"cannot load {ep.key}: it is passphrase-protected (set "
                                    f"passphrase_file)") from None
    except Exception as exc:  # missing, unreadable, not a key
        raise KeyProblem("key", f"cannot load {ep.key}: {_reason(exc)}") from None
    try:
        with open(ep.passphrase_file, encoding="utf-8") as fh:
            passphrase = fh.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyProblem("passphrase_file", f"cannot read {ep.passphrase_file}: {_reason(exc)}") from None
    try:
        return paramiko.PKey.from_path(ep.key, passphrase.encode())
    except Exception:  # paramiko's messages for a wrong passphrase vary with the key type
        raise KeyProblem("passphrase_file", f"the passphrase in {ep.passphrase_file} does not open "
                                            f"{ep.key}") from None


class _UnknownHost(Exception):
    """Raised by the policy so that an unknown key reads differently from a changed one."""


class _Pinned(paramiko.RejectPolicy):
    def missing_host_key(self, client, hostname, key):
        raise _UnknownHost(key.get_name())


def command_line(argv: Sequence[str]) -> str:
    """The remote shell sees each item as exactly one word, whatever it contains."""
    return " ".join(shlex.quote(str(a)) for a in argv)


class Connection:
    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self._client: Optional[paramiko.SSHClient] = None

    def _connect(self) -> paramiko.SSHClient:
        ep = self.endpoint
        try:
            pkey = load_key(ep)
        except KeyProblem as exc:
            raise SSHError(f"{ep}: {exc.option}: {exc}") from None
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(ep.known_hosts)
        except OSError as exc:
            raise SSHError(f"{ep}: cannot read known_hosts {ep.known_hosts}: {_reason(exc)}") from None
        client.set_missing_host_key_policy(_Pinned())
        started = time.monotonic()
        try:
            client.connect(ep.host, port=ep.port, username=ep.user, pkey=pkey, timeout=ep.timeout,
                           banner_timeout=ep.timeout, auth_timeout=ep.timeout, look_for_keys=False,
                           allow_agent=False)
        except paramiko.BadHostKeyException:
            client.close()
            raise SSHError(f"{ep}: host key does not match {ep.known_hosts} (refusing: possible "
                           f"man-in-the-middle or a re-installed host)") from None
        except _UnknownHost as exc:
            client.close()
            raise SSHError(f"{ep}: host key ({exc}) unknown: not in {ep.known_hosts}, add it "
                           f"after checking its fingerprint") from None
        except paramiko.AuthenticationException:
            client.close()
            raise SSHError(f"{ep}: authentication refused for key {ep.key}") from None
        except (paramiko.SSHException, OSError) as exc:
            client.close()
            # paramiko words a silent server by which of its waits ran out ("No existing session")
            if time.monotonic() - started >= ep.timeout:
                raise SSHError(f"{ep}: unreachable: no SSH answer within {ep.timeout:g}s") from None
            raise SSHError(f"{ep}: unreachable: {_reason(exc)}") from None
        client.get_transport().set_keepalive(ep.keepalive)
        return client

    def _channel(self) -> paramiko.Channel:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise paramiko.SSHException("connection closed")
        return transport.open_session(timeout=self.endpoint.timeout)

    def _session(self) -> paramiko.Channel:
        if self._client is not None:
            try:
                return self._channel()
            except (paramiko.SSHException, OSError, EOFError):  # EOFError: paramiko's, on a closed socket
                # The kept connection died since the last use; re-opening is safe
                # because no command was sent on it.
                self.close()
        self._client = self._connect()
        try:
            return self._channel()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise SSHError(f"{self.endpoint}: unreachable: {_reason(exc)}") from None

    def run(self, argv: Sequence[str], stdin: Optional[str] = None, timeout: Optional[float] = None,
            name: Optional[str] = None) -> Tuple[int, str, str]:
        """Run one remote command; returns (exit status, stdout, stderr). ``name``: the command
        that errors name (default: the first word)."""
        timeout = timeout or self.endpoint.timeout
        name = name or argv[0]
        chan = self._session()
        # The whole command, not each read, is bounded: a trickle of output must not hold the cycle.
        deadline = time.monotonic() + timeout
        try:
            chan.settimeout(timeout)
            chan.exec_command(command_line(argv))
            if stdin is not None:
                chan.sendall(stdin.encode())
            chan.shutdown_write()
            out = _drain(chan, chan.recv, deadline)
            err = _drain(chan, chan.recv_stderr, deadline)
            if not chan.status_event.wait(max(deadline - time.monotonic(), 0)):
                raise socket.timeout()
            rc = chan.recv_exit_status()
            if rc == -1:  # paramiko's value when the channel closed with no exit status
                raise paramiko.SSHException("ended with no exit status (killed by a signal)"
                                            if chan.get_transport().is_active() else "the connection dropped")
        except socket.timeout:
            self.close()  # the command may still run; a new connection leaves it behind
            raise SSHError(f"{self.endpoint}: {name} timed out after {timeout:g}s") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise SSHError(f"{self.endpoint}: {name} failed: {_reason(exc)}") from None
        finally:
            chan.close()
        return rc, out.decode(errors="replace"), err.decode(errors="replace")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class Connections:
    """The connections of one factory, one per endpoint, shared by its queues."""

    def __init__(self):
        self._open: Dict[Endpoint, Connection] = {}

    def get(self, endpoint: Endpoint) -> Connection:
        if endpoint not in self._open:
            self._open[endpoint] = Connection(endpoint)
        return self._open[endpoint]

    def close(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()


def connections(services) -> Connections:
    """The factory's shared connections, kept in ``services.extra["ssh"]`` (tests may inject)."""
    return services.extra.setdefault("ssh", Connections())


def _drain(chan: paramiko.Channel, recv, deadline: float) -> bytes:
    """All of one stream until its end, or socket.timeout at the deadline."""
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        chan.settimeout(left)
        chunk = recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk


def check_files(ep: Endpoint, where: str) -> None:
    """The key and known_hosts files checked without connecting; ProvisionerError naming the
    option (``where``: its plugin's prefix) if one is not usable."""
    try:
        load_key(ep)
    except KeyProblem as exc:
        raise ProvisionerError(f"{where}{exc.option}: {exc}") from None
    try:
        pinned = paramiko.HostKeys(ep.known_hosts)
    except Exception as exc:
        raise ProvisionerError(f"{where}known_hosts: cannot read {ep.known_hosts}: {_reason(exc)}") from None
    name = ep.host if ep.port == 22 else f"[{ep.host}]:{ep.port}"
    if pinned.lookup(name) is None:
        raise ProvisionerError(f"{where}known_hosts: no key for {name} in {ep.known_hosts} (add it, checked: "
                               f"ssh-keyscan -p {ep.port} {ep.host})")


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
