from provisioner.batchsubmit._condor import COMMON_OPTIONS, CondorTarget
from provisioner.options import Option


class CondorARC(CondorTarget):
    """Pilots through the grid universe to an ARC CE (REST ``arc`` or older ``nordugrid``)."""
    name = "condorarc"
    template = "condor/arc.sub.j2"
    options = {**COMMON_OPTIONS,
               "gridresource": Option("str", required=True, help="ARC CE host or URL"),
               "flavour": Option("str", "arc", choices=("arc", "nordugrid")),
               "nordugridrsl": Option("str", None, help="extra RSL (nordugrid flavour)")}

    def submit_values(self):
        res = self.opts["gridresource"].strip()
        if self.opts["flavour"] == "arc" and "://" not in res:
            res = f"https://{res}:443/arex"
        return {"grid_resource": f"{self.opts['flavour']} {res}", "rsl": self.opts["nordugridrsl"]}


PLUGIN = CondorARC
