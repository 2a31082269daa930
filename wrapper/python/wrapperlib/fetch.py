"""Pilot downloads through curl/wget and tar, which stage one already required:
they start faster than urllib and tarfile, and honour the same settings
(WRAPPER_DOWNLOAD_TIMEOUT seconds per try, WRAPPER_DOWNLOAD_RETRIES)."""
import os
import re
import subprocess
import time

from .errors import BAD_OPTION, DOWNLOAD, MIDDLEWARE, WrapperError
from .middleware import which

DOWNLOAD_TOOLS = ("curl", "wget")
# HTTP statuses curl's --retry retries (wget's are retried here, as in wrapper.sh).
TRANSIENT_HTTP = ("408", "429", "500", "502", "503", "504")
STATUS_RE = re.compile(rb"^ *HTTP/[0-9.]+ ([0-9]{3})", re.M)


def setting(name, default, minimum):
    """A decimal setting from the environment, checked as stage one does; empty means default."""
    value = os.environ.get(name) or str(default)
    if not (value.isascii() and value.isdigit() and len(value) <= 9) or int(value) < minimum:
        raise WrapperError(BAD_OPTION, "%s: expects a whole number, at least %d" % (name, minimum))
    return int(value)


def settings():
    """(seconds per try, retries); a time limit of 0 would mean none."""
    return setting("WRAPPER_DOWNLOAD_TIMEOUT", 120, 1), setting("WRAPPER_DOWNLOAD_RETRIES", 2, 0)


def command(url, dest):
    """The download's argv: curl's with its own time limit and retries, or one try of wget."""
    timeout, retries = settings()
    if which("curl"):
        return [
            "curl", "--fail", "--silent", "--show-error", "--location", "--globoff",
            "--proto", "=http,https", "--proto-redir", "=http,https",
            "--connect-timeout", str(min(timeout, 10)), "--max-time", str(timeout),
            "--retry", str(retries), "--retry-connrefused", "--output", dest, url,
        ]
    if which("wget"):
        return ["wget", "--quiet", "--server-response", "--timeout=%d" % timeout, "--tries=1",
                "--output-document=" + dest, url]
    raise WrapperError(MIDDLEWARE, "missing required program(s): curl or wget")


def download(url, dest):
    """Downloads url to dest. wget's --timeout limits idle time only and it does not
    retry server errors: each of its tries is limited here, and a time-out, a network
    error (4) or a status curl retries is tried again after 1 s, then twice as long."""
    argv = command(url, dest)
    failure = "download of %s failed" % url
    if argv[0] == "curl":
        run(argv, failure)
        return
    timeout, retries = settings()
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(2 ** (attempt - 1))
        try:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:  # run() has killed it
            detail = "no complete answer within %ds" % timeout
            continue
        if result.returncode == 0:
            return
        statuses = STATUS_RE.findall(result.stderr)
        status = statuses[-1].decode() if statuses else None
        detail = "HTTP %s" % status if status else "wget exit %d" % result.returncode
        if not (result.returncode == 4 or status in TRANSIENT_HTTP):
            break
    raise WrapperError(DOWNLOAD, "%s: %s" % (failure, detail))


def run(argv, failure):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").splitlines()
        detail = "; ".join(line.strip() for line in lines if line.strip())  # one log line, as tar has several
        raise WrapperError(DOWNLOAD, "%s: %s" % (failure, detail or "exit %d" % result.returncode))


def sha256(path):
    import hashlib  # only when a checksum is asked for

    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_tarball(url, directory, checksum=None):
    """Downloads the tarball at url and unpacks it into directory (created)."""
    tarball = directory + ".tar.gz"
    try:
        download(url, tarball)
        if checksum and sha256(tarball) != checksum.lower():
            raise WrapperError(DOWNLOAD, "checksum mismatch for %s" % url)
        os.mkdir(directory)
        try:
            run(["tar", "-xzf", tarball, "-C", directory, "--no-same-owner"], "unpacking %s failed" % url)
        except WrapperError:
            import shutil  # only on a failure

            shutil.rmtree(directory, ignore_errors=True)  # so that a plugin may fetch another mirror into it
            raise
    finally:
        if os.path.exists(tarball):
            os.unlink(tarball)
