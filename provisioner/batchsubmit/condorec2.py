import os

from provisioner.batchsubmit._condor import COMMON_OPTIONS, CondorTarget
from provisioner.cloud import userdata
from provisioner.options import Option


class CondorEC2(CondorTarget):
    """VMs through the grid universe ``ec2`` (the APF way): each VM is a job; removing
    the job terminates the VM. Retire removes only VM jobs still idle (VMs not started);
    a started VM ends by itself (the user-data's idle shutdown)."""
    name = "condorec2"
    template = "condor/ec2.sub.j2"
    options = {**COMMON_OPTIONS, **userdata.OPTIONS,
               "gridresource": Option("str", "https://ec2.amazonaws.com/", help="EC2 endpoint URL"),
               "access_key_id": Option("str", required=True, help="file holding the access key id"),
               "secret_access_key": Option("str", required=True, help="file holding the secret key"),
               "ami_id": Option("str", required=True),
               "instance_type": Option("str", "m5.large"),
               "spot_price": Option("float", None, minimum=0),
               "security_groups": Option("str", None),
               "keypair": Option("str", None)}

    def submit_values(self):
        o = self.opts
        return {"grid_resource": f"ec2 {o['gridresource']}", "access_key_id": o["access_key_id"],
                "secret_access_key": o["secret_access_key"], "ami_id": o["ami_id"],
                "instance_type": o["instance_type"], "spot_price": o["spot_price"],
                "security_groups": o["security_groups"], "keypair": o["keypair"],
                "user_data_file": os.path.join(self.services.log_dir, self.queue.name + ".user-data")}

    def validate(self):
        super().validate()
        userdata.check(self.queue, self.services, self.opts, self.namespace())

    def prepare(self, now, launch_id):
        super().prepare(now, launch_id)
        path = self.submit_values()["user_data_file"]
        text = userdata.render_user_data(self.queue, self.services, launch_id, self.opts)
        # It may hold the pool token: readable by the factory (and its gridmanager) only.
        # Written aside and renamed: a gridmanager reading it for an earlier launch never sees it half-written.
        fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(path + ".new", path)


PLUGIN = CondorEC2
