import os

from provisioner.batchsubmit._condor import COMMON_OPTIONS, CondorTarget
from provisioner.cloud import userdata
from provisioner.options import Option


class CondorEC2(CondorTarget):
    """VMs through the grid universe ``ec2`` (the APF way): each VM is a job; removing
    the job terminates the VM. Retire removes only VMs not yet running a startd job."""
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

    def submit(self, n, ctx, launch_id):
        path = self.submit_values()["user_data_file"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(userdata.render_user_data(self.queue, self.services, launch_id, self.opts))
        return super().submit(n, ctx, launch_id)


PLUGIN = CondorEC2
