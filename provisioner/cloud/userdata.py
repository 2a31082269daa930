"""The cloud-init user-data every VM boots with, shared by the ec2, libcloud and condorec2 targets."""
import base64
import hashlib
import re
import shlex

import jinja2

from provisioner import render
from provisioner.cloud import tags
from provisioner.condor import attributes
from provisioner.errors import ProvisionerError, TemplateValueError
from provisioner.options import Option

MAX_BYTES = 16384  # EC2's limit on raw user-data


def _sha256(value):
    return None if re.fullmatch(r"[0-9a-fA-F]{64}", value) else f"expected a sha256 (64 hex digits), got {value!r}"


class UserDataError(ProvisionerError):
    """A user-data problem; ``option`` is the target's option at fault (None: the message
    names a queue key such as executable.arguments)."""

    def __init__(self, option, message):
        self.option = option
        super().__init__(f"{option}: {message}" if option else message)


OPTIONS = {
    "user_data_template": Option("str", "cloud/user-data.yaml.j2", help="Jinja2 template under templates/"),
    "collector": Option("str", None, help="the pool's central manager the VMs join (CONDOR_HOST)"),
    "token_file": Option("str", None, help="file holding an IDTOKEN the VMs use to join the pool"),
    "idle_shutdown": Option("int", 1200, minimum=60, help="a VM with no claim this long powers off (s)"),
    "max_lifetime": Option("int", 1440, minimum=10, help="a VM powers off this long after boot (minutes)"),
    "wrapper_url": Option("str", None, help="where VMs fetch the stage-one wrapper (default: embed executable)"),
    "wrapper_checksum": Option("str", None, check=_sha256,
                               help="sha256 of the wrapper (at wrapper_url, or the embedded executable)"),
    "condor_config": Option("list", [], help="extra HTCondor configuration lines for the VMs (\\, for a comma)"),
}


def check(queue_cfg, services, opts: dict, where: str) -> None:
    """The user-data rendered once at start-up; ProvisionerError names the option at fault
    (``where``: the target's option prefix)."""
    try:
        render_user_data(queue_cfg, services, "validate", opts)
    except UserDataError as exc:
        raise ProvisionerError(f"{where}{exc}" if exc.option else str(exc)) from None
    except TemplateValueError as exc:
        raise ProvisionerError(f"{where}user-data: {exc}") from None


# What the status finds a VM's startd by: a condor_config line, read after the factory's,
# would hide the VM from its queue (never joined: terminated, then the guard trips).
_IDENTITY = {a.lower() for a in (attributes.FACTORY, attributes.QUEUE, attributes.LAUNCH, tags.INSTANCE_ATTR)}


def _check_identity(line: str) -> None:
    name, eq, value = line.partition("=")
    key = name.strip().lower().rsplit(".", 1)[-1]  # STARTD.ProvisionerQueue too
    if not eq:
        return
    if key in _IDENTITY:
        raise UserDataError("condor_config", f"{name.strip()} is set by the factory (its VMs are found by it)")
    if key == "startd_attrs" and "$(startd_attrs)" not in value.lower().replace(" ", ""):
        raise UserDataError("condor_config", f"{name.strip()} must keep $(STARTD_ATTRS): the factory's "
                                             "attributes are in it")


def render_user_data(queue_cfg, services, launch_id: str, opts: dict) -> str:
    """User-data for one launch; UserDataError names the option at fault."""
    try:
        args = shlex.split(queue_cfg.arguments) if queue_cfg.arguments else []
    except ValueError as exc:
        raise UserDataError(None, f"executable.arguments: {exc}") from None
    raw, exe = None, queue_cfg.executable
    if exe and not opts["wrapper_url"]:
        # At every launch too: VMs launched after the file went would boot without the wrapper.
        try:
            with open(exe, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise UserDataError("wrapper_url", f"not set, and executable {exe} cannot be read here to embed in "
                                               f"the VMs' user-data: {exc.strerror}") from None
    inline = base64.b64encode(raw).decode() if raw is not None else None
    checksum = opts["wrapper_checksum"]
    # The VM powers off on a checksum mismatch: one that cannot match would stop every VM.
    if checksum and not opts["wrapper_url"] and raw is None:
        raise UserDataError("wrapper_checksum", "set, but there is no wrapper to check: set wrapper_url "
                                                "or an executable that exists on this host")
    digest = hashlib.sha256(raw).hexdigest() if raw is not None else None
    if checksum and digest and digest != checksum.lower():
        raise UserDataError("wrapper_checksum", f"does not match executable {queue_cfg.executable} (sha256 {digest})")
    token = None
    if opts["token_file"]:
        try:
            with open(opts["token_file"]) as fh:
                token = fh.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not a text file"
            raise UserDataError("token_file", f"cannot read {opts['token_file']}: {why}") from None
    # The values written as HTCondor configuration, checked here to name their option.
    for option, values, check in (("collector", [opts["collector"]] if opts["collector"] else [], render.submit_value),
                                  ("condor_config", opts["condor_config"], render.config_line)):
        for value in values:
            try:
                check(value)
            except TemplateValueError as exc:
                hint = "; lines are separated by commas (\\, for a comma)" if option == "condor_config" else ""
                raise UserDataError(option, f"{exc}{hint}") from None
    for line in opts["condor_config"]:
        _check_identity(line)
    try:
        text = render.render(opts["user_data_template"], factory_id=services.factory_id, queue=queue_cfg.name,
                             launch_id=launch_id, collector=opts["collector"], token=token,
                             idle_shutdown=opts["idle_shutdown"], max_lifetime=opts["max_lifetime"],
                             wrapper_url=opts["wrapper_url"], wrapper_checksum=checksum,
                             wrapper_inline=inline, wrapper_args=args, condor_config=opts["condor_config"],
                             instance_attr=tags.INSTANCE_ATTR)
    except jinja2.TemplateNotFound:
        raise UserDataError("user_data_template",
                            f"no template {opts['user_data_template']!r} under {render.TEMPLATES}") from None
    except jinja2.TemplateError as exc:
        line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        raise UserDataError("user_data_template", f"{opts['user_data_template']}{line}: {exc.message}") from None
    if len(text.encode()) > MAX_BYTES:
        raise UserDataError("wrapper_url", f"user-data is {len(text.encode())} bytes, over the {MAX_BYTES} limit: "
                                           f"set wrapper_url instead of embedding {queue_cfg.executable}")
    return text
