"""VMs on a libcloud compute provider whose driver takes user data and tags (ec2,
openstack, eucalyptus, ...): the driver's options come from
``batchsubmit.libcloud.driver.<option>`` in the queue."""
from provisioner.cloud.libcloudapi import LibcloudBackend
from provisioner.cloud.target import OPTIONS, CloudTarget
from provisioner.options import Option


class Libcloud(CloudTarget):
    name = "libcloud"
    option_prefixes = ("instance_type.", "driver.")
    options = {**OPTIONS,
               "provider": Option("str", required=True, help="libcloud provider name: openstack, ec2, eucalyptus, ..."),
               "key": Option("secret", None, help="the provider's key (user, access key id)"),
               "secret": Option("secret", None, help="the provider's secret"),
               "credentials_file": Option("str", None, help="file with key = ... and secret = ... lines"),
               "image": Option("str", required=True, help="image id"),
               "zones": Option("list", [], help="availability zones in preference order")}

    @classmethod
    def make_backend(cls, queue, opts, services):
        return LibcloudBackend(opts, services)


PLUGIN = Libcloud
