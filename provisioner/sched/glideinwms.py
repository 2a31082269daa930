"""The GlideinWMS frontend's request, as a policy step. Ignores its input.

Source: the GlideinWMS frontend documentation (glideinwms.fnal.gov, "Frontend
configuration": ``idle_glideins_per_entry max/reserve``, ``idle_vms_per_entry
max/curb``, ``running_glideins_per_entry max``) and its element loop
(glideinFrontendElement: "since it takes a few cycles to stabilize, ask for only
one third"). Per entry and cycle:

    effective idle E = idle jobs the entry can run (on a VM queue: those that fit one
                       of its instance types; a pilot's size is not known here)
    requested idle  = ceil(E / ramp_up) + reserve_idle        (0 when E = 0)
    requested idle  = min(requested idle, max_idle)
    halved          when the pool's idle glideins >= curb_vms_idle
    0               when idle glideins >= max_vms_idle or running >= max_running

The factory keeps that many glideins idle (here: VMs or pilots pending), so it
submits requested - pending. When more are pending than requested for
``remove_excess_cycles`` cycles in a row the excess is removed (the factory's
remove-excess mode); running glideins leave on their own idle timeout.
"""
import math

from provisioner.cloud import lifecycle, sizing
from provisioner.options import Option
from provisioner.sched.base import Step


class GlideinWMS(Step):
    name = "glideinwms"
    options = {
        "ramp_up": Option("float", 3.0, minimum=1, help="attenuation of effective idle jobs"),
        "reserve_idle": Option("int", 5, minimum=0, help="idle_glideins_per_entry reserve"),
        "max_idle": Option("int", 100, minimum=0, help="idle_glideins_per_entry max"),
        "curb_vms_idle": Option("int", 5, minimum=0, help="idle_vms_per_entry curb: halve above it"),
        "max_vms_idle": Option("int", 100, minimum=0, help="idle_vms_per_entry max: stop above it"),
        "max_running": Option("int", 10000, minimum=0, help="running_glideins_per_entry max"),
        "remove_excess_cycles": Option("int", 3, minimum=1, help="cycles of excess before removing it"),
    }

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        self.types = sizing.types_or_pilots(queue)
        self.excess_cycles = 0

    def __call__(self, n, ctx):
        o, p, w = self.opts, ctx.pilots, ctx.work
        # the packing's unfit jobs, as VMDemand reports them; a WMS giving counts only: all fit
        effective = w.idle - sizing.pack(w.jobs, self.types).unfit if self.types and w.jobs else w.idle
        idle_vms = p.states.get(lifecycle.IDLE, 0)
        pending = p.pending
        if effective == 0:
            req = 0
        else:
            req = min(math.ceil(effective / o["ramp_up"]) + o["reserve_idle"], o["max_idle"])
        if idle_vms >= o["max_vms_idle"] or p.running >= o["max_running"]:
            req, why = 0, "at max"
        elif idle_vms >= o["curb_vms_idle"]:
            req, why = req // 2, "curbed"
        else:
            why = "requested"
        out = req - pending
        if out < 0:
            self.excess_cycles += 1
            if self.excess_cycles < o["remove_excess_cycles"]:
                out = 0
        else:
            self.excess_cycles = 0
        return out, f"effective_idle={effective} {why}_idle={req} pending={pending} idle_vms={idle_vms}"


PLUGIN = GlideinWMS
