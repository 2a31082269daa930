from provisioner.batchsubmit._condor import COMMON_OPTIONS, CondorTarget
from provisioner.options import Option


class CondorCE(CondorTarget):
    """Pilots through the grid universe to an HTCondor-CE."""
    name = "condorce"
    template = "condor/ce.sub.j2"
    options = {**COMMON_OPTIONS,
               "gridresource": Option("str", required=True,
                                      help="CE host, host:port, or a full 'condor host host:port'"),
               "port": Option("int", 9619)}

    def submit_values(self):
        res = self.opts["gridresource"].strip()
        if " " not in res:
            host, _, port = res.partition(":")
            res = f"condor {host} {host}:{port or self.opts['port']}"
        return {"grid_resource": res}


PLUGIN = CondorCE
