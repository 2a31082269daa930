from provisioner.batchsubmit._condor import COMMON_OPTIONS, CondorTarget
from provisioner.options import Option, check_host_port, check_port, split_host_port


def _check_gridresource(text):
    words = text.split()
    if len(words) == 1 or "\n" in text:
        return check_host_port(text)
    if len(words) != 3 or words[0] != "condor":
        return f"expected host, host:port or 'condor <schedd> <collector>', got {text.strip()!r}"
    return None


class CondorCE(CondorTarget):
    """Pilots through the grid universe to an HTCondor-CE."""
    name = "condorce"
    template = "condor/ce.sub.j2"
    options = {**COMMON_OPTIONS,
               "gridresource": Option("str", required=True, check=_check_gridresource,
                                      help="CE host, host:port, or a full 'condor host host:port'"),
               "port": Option("int", 9619, check=check_port)}

    def submit_values(self):
        res = self.opts["gridresource"].strip()
        if " " not in res:
            host, port = split_host_port(res)
            res = f"condor {host} {host}:{port or self.opts['port']}"
        return {"grid_resource": res}


PLUGIN = CondorCE
