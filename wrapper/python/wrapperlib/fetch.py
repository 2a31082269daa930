"""Pilot downloads through curl/wget and tar, which stage one already required:
they start faster than urllib and tarfile, and honour the same settings
(WRAPPER_DOWNLOAD_TIMEOUT seconds per try, WRAPPER_DOWNLOAD_RETRIES)."""
import os
import subprocess

from .errors import BAD_OPTION, DOWNLOAD, MIDDLEWARE, WrapperError
from .middleware import which

DOWNLOAD_TOOLS = ("curl", "wget")


def setting(name, default, minimum):
    """A decimal setting from the environment, checked as stage one does; empty means default."""
    value = os.environ.get(name) or str(default)
    if not (value.isascii() and value.isdigit() and len(value) <= 9) or int(value) < minimum:
        raise WrapperError(BAD_OPTION, "%s: expects a whole number, at least %d" % (name, minimum))
    return int(value)


def command(url, dest):
    timeout = setting("WRAPPER_DOWNLOAD_TIMEOUT", 120, 1)  # 0 would mean no limit
    retries = setting("WRAPPER_DOWNLOAD_RETRIES", 2, 0)
    if which("curl"):
        return [
            "curl", "--fail", "--silent", "--show-error", "--location", "--globoff",
            "--proto", "=http,https", "--proto-redir", "=http,https",
            "--connect-timeout", str(min(timeout, 10)), "--max-time", str(timeout),
            "--retry", str(retries), "--retry-connrefused", "--output", dest, url,
        ]
    if which("wget"):
        return ["wget", "--quiet", "--timeout=%d" % timeout, "--tries=%d" % (retries + 1),
                "--retry-connrefused", "--output-document=" + dest, url]
    raise WrapperError(MIDDLEWARE, "missing required program(s): curl or wget")


def run(argv, failure):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()
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
        run(command(url, tarball), "download of %s failed" % url)
        if checksum and sha256(tarball) != checksum.lower():
            raise WrapperError(DOWNLOAD, "checksum mismatch for %s" % url)
        os.mkdir(directory)
        run(["tar", "-xzf", tarball, "-C", directory, "--no-same-owner"], "unpacking %s failed" % url)
    finally:
        if os.path.exists(tarball):
            os.unlink(tarball)
