"""The cloud-init user-data every VM boots with, shared by the ec2, libcloud and condorec2 targets."""
import base64
import os
import shlex

from provisioner import render
from provisioner.cloud import tags
from provisioner.errors import ProvisionerError
from provisioner.options import Option

MAX_BYTES = 16384  # EC2's limit on raw user-data

OPTIONS = {
    "user_data_template": Option("str", "cloud/user-data.yaml.j2", help="Jinja2 template under templates/"),
    "collector": Option("str", None, help="the pool's central manager the VMs join (CONDOR_HOST)"),
    "token_file": Option("str", None, help="file holding an IDTOKEN the VMs use to join the pool"),
    "idle_shutdown": Option("int", 1200, minimum=60, help="a VM with no claim this long powers off (s)"),
    "max_lifetime": Option("int", 1440, minimum=10, help="a VM powers off this long after boot (minutes)"),
    "wrapper_url": Option("str", None, help="where VMs fetch the stage-one wrapper (default: embed executable)"),
    "wrapper_checksum": Option("str", None, help="sha256 of the wrapper at wrapper_url"),
    "condor_config": Option("list", [], help="extra HTCondor configuration lines for the VMs"),
}


def render_user_data(queue_cfg, services, launch_id: str, opts: dict) -> str:
    """User-data for one launch; ProvisionerError names the option at fault."""
    try:
        args = shlex.split(queue_cfg.arguments) if queue_cfg.arguments else []
    except ValueError as exc:
        raise ProvisionerError(f"executable.arguments: {exc}") from None
    inline = None
    if not opts["wrapper_url"] and queue_cfg.executable and os.path.isfile(queue_cfg.executable):
        with open(queue_cfg.executable, "rb") as fh:
            inline = base64.b64encode(fh.read()).decode()
    token = None
    if opts["token_file"]:
        try:
            with open(opts["token_file"]) as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise ProvisionerError(f"token_file: cannot read {opts['token_file']}: {exc.strerror}") from None
    text = render.render(opts["user_data_template"], factory_id=services.factory_id, queue=queue_cfg.name,
                         launch_id=launch_id, collector=opts["collector"], token=token,
                         idle_shutdown=opts["idle_shutdown"], max_lifetime=opts["max_lifetime"],
                         wrapper_url=opts["wrapper_url"], wrapper_checksum=opts["wrapper_checksum"],
                         wrapper_inline=inline, wrapper_args=args, condor_config=opts["condor_config"],
                         instance_attr=tags.INSTANCE_ATTR)
    if len(text.encode()) > MAX_BYTES:
        raise ProvisionerError(f"user-data is {len(text.encode())} bytes, over the {MAX_BYTES} limit: "
                               f"set wrapper_url instead of embedding {queue_cfg.executable}")
    return text
