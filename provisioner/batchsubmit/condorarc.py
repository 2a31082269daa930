from provisioner.batchsubmit._condor import COMMON_OPTIONS, CondorTarget
from provisioner.errors import ProvisionerError
from provisioner.options import Option, check_host_port, split_host_port


class CondorARC(CondorTarget):
    """Pilots through the grid universe to an ARC CE's REST interface (grid type ``arc``;
    HTCondor 24 no longer has the older ``nordugrid`` type nor its RSL)."""
    name = "condorarc"
    template = "condor/arc.sub.j2"
    options = {**COMMON_OPTIONS,
               "gridresource": Option("str", required=True,
                                      check=lambda v: None if "://" in v else check_host_port(v),
                                      help="ARC CE host[:port], or the https URL of its REST interface"),
               "resources": Option("str", None, help="ADL resources for arc_resources, "
                                                     "e.g. <QueueName>grid</QueueName>"),
               "rte": Option("str", None, help="runtime environments for arc_rte, comma-separated")}

    def submit_values(self):
        res = self.opts["gridresource"].strip()
        if "://" not in res:  # host or host:port (a port once more would make no URL)
            host, port = split_host_port(res)
            res = f"https://{host}:{port or 443}/arex"
        return {"grid_resource": f"arc {res}", "arc_resources": self.opts["resources"], "arc_rte": self.opts["rte"]}

    def validate(self):
        super().validate()
        # APF's CondorNordugrid built its RSL from these; the arc type sends none, so the ARC
        # queue, the environment or the limits they asked for would be dropped without a word.
        for key, value in sorted(self.queue.raw.items()):
            if not key.startswith("nordugridrsl.") or key == "nordugridrsl.jobname" \
                    or value.strip() in ("", "None", "none"):
                continue
            if key == "nordugridrsl.queue":
                use = f"{self.namespace()}resources = <QueueName>{value.strip()}</QueueName>"
            elif key.startswith("nordugridrsl.addenv."):
                use = f"{self.namespace()}environ"
            else:
                use = f"its ADL in {self.namespace()}resources"
            raise ProvisionerError(f"{key}: HTCondor's arc grid type sends no nordugrid RSL: use {use}")


PLUGIN = CondorARC
