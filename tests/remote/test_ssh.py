"""The SSH helper against a real sshd: key auth, pinned host keys, quoting, reconnects."""
import dataclasses
import os
import select
import signal
import socket
import subprocess
import threading
import time
import uuid

import paramiko
import pytest

from provisioner.remote import ssh
from tests.remote.conftest import USER, wait_for


def test_key_auth_runs_a_command(endpoint):
    conn = ssh.Connection(endpoint)
    try:
        assert conn.run(["id", "-un"]) == (0, "provtest\n", "")
        assert conn.run(["sh", "-c", "cat; exit 3"], stdin="from stdin") == (3, "from stdin", "")
        first = conn._client
        conn.run(["true"])
        assert conn._client is first  # one connection, reused
    finally:
        conn.close()


def _refused(endpoint) -> str:
    with pytest.raises(ssh.SSHError) as info:
        ssh.Connection(endpoint).run(["true"])
    text = str(info.value)
    assert "\n" not in text and f"provtest@127.0.0.1:{endpoint.port}" in text
    return text


def test_wrong_key_is_refused_clearly(endpoint, keys):
    assert "authentication refused for key" in _refused(dataclasses.replace(endpoint, key=keys["stranger"]))


def test_unknown_host_key_is_refused(endpoint, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    text = _refused(dataclasses.replace(endpoint, known_hosts=str(empty)))
    assert "host key (ssh-ed25519) unknown: not in" in text


def test_changed_host_key_is_refused(endpoint, sshd, keys, tmp_path):
    wrong = sshd.known_hosts(str(tmp_path / "known_hosts"), keys["other_host"] + ".pub")
    assert "host key does not match" in _refused(dataclasses.replace(endpoint, known_hosts=wrong))


def test_unreachable_and_missing_files_are_one_line(endpoint, tmp_path):
    from tests.remote.conftest import free_port

    assert "unreachable" in _refused(dataclasses.replace(endpoint, port=free_port()))
    assert "cannot read known_hosts" in _refused(dataclasses.replace(endpoint, known_hosts=str(tmp_path / "none")))
    assert "key: cannot load" in _refused(dataclasses.replace(endpoint, key=str(tmp_path / "none")))


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_a_passphrase_protected_key_opens_with_its_passphrase_file(endpoint, keys, tmp_path, kind):
    from tests.remote.conftest import LOCKED_PASSPHRASE

    locked = dataclasses.replace(endpoint, key=keys["locked"][kind], passphrase_file=str(tmp_path / "pass"))
    (tmp_path / "pass").write_text(LOCKED_PASSPHRASE + "\n")
    conn = ssh.Connection(locked)
    try:
        assert conn.run(["id", "-un"]) == (0, "provtest\n", "")
    finally:
        conn.close()
    (tmp_path / "pass").write_text(LOCKED_PASSPHRASE[:-1] + "\n")
    text = _refused(locked)
    assert f"passphrase_file: the passphrase in {tmp_path / 'pass'} does not open {keys['locked'][kind]}" in text
    assert "staple" not in text and "staple" not in _refused(dataclasses.replace(locked, passphrase_file=None))


def test_hostile_arguments_stay_words(endpoint):
    pwn = f"/tmp/provisioner-pwn-{uuid.uuid4().hex}"
    hostile = [f"$(touch {pwn})", ";", "touch", pwn, "`touch {pwn}`", "'", '"', "a b", "&&", "|", "\n"]
    conn = ssh.Connection(endpoint)
    try:
        rc, out, _ = conn.run(["printf", "%s\\n", *hostile])
    finally:
        conn.close()
    assert rc == 0 and out.split("\n")[:-1] == [*hostile[:-1], "", ""]
    assert not os.path.exists(pwn)


def test_connection_is_reopened_after_the_server_restarts(new_sshd, endpoint):
    new_sshd.start()
    ep = dataclasses.replace(endpoint, port=new_sshd.port,
                             known_hosts=new_sshd.known_hosts(endpoint.known_hosts + f"-{new_sshd.port}"))
    conn = ssh.Connection(ep)
    try:
        assert conn.run(["true"])[0] == 0
        conn._client.get_transport().close()  # the connection drops ...
        assert conn.run(["true"])[0] == 0  # ... and is re-opened
        new_sshd.stop()
        conn._client.get_transport().close()
        with pytest.raises(ssh.SSHError, match="unreachable"):
            conn.run(["true"])
        new_sshd.start()
        assert conn.run(["true"])[0] == 0
    finally:
        conn.close()


def test_a_server_that_never_answers_is_one_line_saying_so(endpoint, caplog):
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel completes the handshake; nothing answers
    ep = dataclasses.replace(endpoint, port=silent.getsockname()[1], timeout=1)
    try:
        with caplog.at_level("INFO"):
            with pytest.raises(ssh.SSHError) as info:
                ssh.Connection(ep).run(["true"])
            for thread in threading.enumerate():  # paramiko logs from its own thread
                if isinstance(thread, paramiko.Transport):
                    thread.join(10)
    finally:
        silent.close()
    assert str(info.value) == f"{ep}: unreachable: no SSH answer within 1s"
    assert [r.getMessage() for r in caplog.records] == []  # not paramiko's traceback, in 16 lines


def test_a_command_trickling_output_times_out_as_a_whole(endpoint):
    conn = ssh.Connection(dataclasses.replace(endpoint, timeout=2))
    try:
        with pytest.raises(ssh.SSHError, match="sh timed out after 2s"):
            conn.run(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo x; sleep 1; done"])
    finally:
        conn.close()


class _Nat:
    """A loopback TCP forwarder that, like a NAT, silently stops forwarding a connection
    idle for ``idle`` seconds: its packets vanish, neither end is told."""

    def __init__(self, port, idle):
        self.port, self.idle = port, idle
        self.accepted = self.cut = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.listen_port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._forward, args=(client, upstream), daemon=True).start()

    def _forward(self, a, b):
        peer = {a: b, b: a}
        last, cut = time.monotonic(), False
        with a, b:
            while True:
                ready, _, _ = select.select([a, b], [], [], 0.1)
                if not cut and time.monotonic() - last > self.idle:
                    cut = True
                    self.cut += 1
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                        if data and not cut:
                            peer[sock].sendall(data)
                            last = time.monotonic()
                    except OSError:  # an end reset the connection
                        return
                    if not data:
                        return

    def close(self):
        self.server.close()


@pytest.mark.parametrize("keepalive", [1, 0])
def test_keepalives_keep_an_idle_connection_through_a_nat(endpoint, keepalive):
    nat = _Nat(endpoint.port, idle=1.5)
    ep = dataclasses.replace(endpoint, port=nat.listen_port, timeout=2, keepalive=keepalive,
                             known_hosts=endpoint.known_hosts + "-nat")
    with open(endpoint.known_hosts) as src, open(ep.known_hosts, "w") as dst:
        dst.write(src.read().replace(f"]:{endpoint.port} ", f"]:{nat.listen_port} "))
    conn = ssh.Connection(ep)
    try:
        assert conn.run(["true"])[0] == 0
        time.sleep(2.5)  # the connection stays idle longer than the NAT keeps it
        started = time.monotonic()
        assert conn.run(["true"])[0] == 0
        if keepalive:
            assert (nat.accepted, nat.cut) == (1, 0)
            assert time.monotonic() - started < 1
        else:  # the dropped connection costs a whole timeout before a new one is opened
            assert (nat.accepted, nat.cut) == (2, 1)
            assert time.monotonic() - started >= 2
    finally:
        conn.close()
        nat.close()


def descendants(pid, name):
    """The processes called ``name`` below ``pid``."""
    found = []
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for child in map(int, children):
        try:
            with open(f"/proc/{child}/comm") as fh:
                if fh.read().strip() == name:
                    found.append(child)
        except FileNotFoundError:  # it ended meanwhile
            continue
        found += descendants(child, name)
    return found


def test_a_connection_dropped_under_a_command_is_one_line_then_reopened(new_sshd, endpoint):
    new_sshd.start()
    ep = dataclasses.replace(endpoint, port=new_sshd.port,
                             known_hosts=new_sshd.known_hosts(endpoint.known_hosts + f"-{new_sshd.port}"))
    conn = ssh.Connection(ep)
    marker = f"30.{uuid.uuid4().int % 10 ** 12:012d}"  # seconds to sleep, told apart by pgrep
    running = ["pgrep", "-u", USER, "-f", f"sleep {marker}"]
    failed = []

    def command():
        try:
            conn.run(["sleep", marker])
        except ssh.SSHError as exc:
            failed.append(str(exc))

    thread = threading.Thread(target=command)
    thread.start()
    try:
        wait_for(lambda: subprocess.run(running, capture_output=True).returncode == 0, "the remote command")
        # The login node drops the connection (the sshd processes of the session end): no
        # exit status ever comes, though the command itself goes on.
        for pid in descendants(new_sshd.proc.pid, "sshd"):
            os.kill(pid, signal.SIGKILL)
        thread.join(20)
        assert failed == [f"{ep}: sleep failed: the connection dropped"]
        assert conn.run(["echo", "again"]) == (0, "again\n", "")
        # Dropped just before a command (paramiko may raise EOFError opening it): re-opened.
        conn._client.get_transport().sock.shutdown(socket.SHUT_RDWR)
        assert conn.run(["echo", "again"]) == (0, "again\n", "")
    finally:
        subprocess.run(["pkill", "-u", USER, "-f", f"sleep {marker}"])  # it outlives its session
        thread.join(20)
        conn.close()
