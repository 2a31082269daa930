from provisioner.batchsubmit._condor import COMMON_OPTIONS, CondorTarget
from provisioner.options import Option


class CondorARC(CondorTarget):
    """Pilots through the grid universe to an ARC CE's REST interface (grid type ``arc``;
    HTCondor 24 no longer has the older ``nordugrid`` type nor its RSL)."""
    name = "condorarc"
    template = "condor/arc.sub.j2"
    options = {**COMMON_OPTIONS,
               "gridresource": Option("str", required=True, help="ARC CE host, or the https URL of its REST interface"),
               "resources": Option("str", None, help="ADL resources for arc_resources, "
                                                     "e.g. <QueueName>grid</QueueName>"),
               "rte": Option("str", None, help="runtime environments for arc_rte, comma-separated")}

    def submit_values(self):
        res = self.opts["gridresource"].strip()
        if "://" not in res:
            res = f"https://{res}:443/arex"
        return {"grid_resource": f"arc {res}", "arc_resources": self.opts["resources"], "arc_rte": self.opts["rte"]}


PLUGIN = CondorARC
