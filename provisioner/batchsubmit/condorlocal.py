from provisioner.batchsubmit._condor import COMMON_OPTIONS, CondorTarget
from provisioner.options import Option


class CondorLocal(CondorTarget):
    """Pilots as vanilla (or local) universe jobs in a schedd of this pool."""
    name = "condorlocal"
    template = "condor/local.sub.j2"
    options = {**COMMON_OPTIONS, "universe": Option("str", "vanilla", choices=("vanilla", "local"))}

    def submit_values(self):
        return {"universe": self.opts["universe"]}


PLUGIN = CondorLocal
