"""Where the simulated machines come from: an emulated cloud or an emulated pilot site.

A back end turns what the factory's target did (instances launched, pilot jobs
submitted, VMs terminated) into machines appearing in and leaving the emulated
pool, on its own clock of boot times, failures and interruptions. It also keeps
one ``VM`` record per machine it ever started, for the metrics.
"""
import heapq
from typing import Dict, List, Optional, Tuple

from provisioner.condor import attributes
from provisioner.condor.emulator import StartdAd
from provisioner.simulate.engine import VM


class Backend:
    def __init__(self):
        self.sim = None
        self.records: List[VM] = []
        self.live: Dict[str, VM] = {}  # VM id -> record, until it ends
        self._ended_cost = 0.0
        self._timers: List[Tuple[float, int, str, str]] = []  # (time, seq, what, vm id)
        self._seq = 0

    def attach(self, sim) -> None:
        self.sim = sim

    def extra(self) -> dict:
        return {}

    # what the engine asks
    def next_event(self) -> float:
        return self._timers[0][0] if self._timers else float("inf")

    def advance(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, what, vid = heapq.heappop(self._timers)
            if vid in self.live:
                getattr(self, "on_" + what)(self.live[vid], now)

    def alive(self) -> int:
        return len(self.live)

    def booting(self) -> int:
        return sum(1 for v in self.live.values() if v.ready is None)

    def cost(self, now: float) -> float:
        return self._ended_cost + sum(v.price * v.billed(now) / 3600.0 for v in self.live.values())

    def vms(self) -> List[VM]:
        return self.records

    def vm_of(self, ad) -> Optional[VM]:
        raise NotImplementedError

    def machine_idle(self, machine, now: float) -> None:
        """A machine ran its last job; pilots start their idle countdown."""

    def reference(self, queue: str) -> Tuple[int, int, float, float]:
        """(cpus, memory, boot time, price) of the VMs the queue launches, for the bound; the boot
        time is the mean a VM draws (the least over the queue's types): the bound is what a
        clairvoyant wastes in expectation on this cloud."""
        raise NotImplementedError

    def close(self, now: float) -> None:
        """The simulation ends: whatever still runs is billed up to now."""

    # for subclasses
    def _timer(self, t: float, what: str, vid: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (t, self._seq, what, vid))

    def _new(self, vm: VM) -> VM:
        self.records.append(vm)
        self.live[vm.id] = vm
        return vm

    def _end(self, vm: VM, now: float) -> None:
        vm.set_busy(False, now)
        if vm.ended is None:
            vm.ended = now
        if self.live.pop(vm.id, None) is not None:
            self._ended_cost += vm.price * vm.billed(now) / 3600.0

    def _boot_time(self, itype: str) -> float:
        sc = self.sim.scenario
        mean, jitter = sc.for_type(itype, "boot_time"), sc.for_type(itype, "boot_jitter")
        return max(0.0, mean + (self.sim.rng.uniform(-jitter, jitter) if jitter else 0.0))


class PilotSite(Backend):
    """EMULATED grid or batch site behind the HTCondor targets (CondorLocal, CondorCE, ...).

    Each pilot job the factory submits waits ``boot_time`` (the site's queue and
    start-up), then runs and brings one startd slot of ``pilot.cpus`` and
    ``pilot.memory``; it exits once idle for ``pilot.idle_timeout`` (a glidein's idle
    shutdown). A share ``boot_failure_rate`` of pilots start but die after
    ``fail_after`` seconds without joining (a black hole). Billed from submission,
    like a VM, so pilot and cloud policies compare on the same scale.
    """
    ITYPE = "pilot"

    def attach(self, sim):
        super().attach(sim)
        sim.schedd.on_submit.append(self._submitted)
        sim.schedd.on_remove.append(self._removed)

    def reference(self, queue):
        sc = self.sim.scenario
        return sc.pilot_cpus, sc.pilot_memory, sc.for_type(self.ITYPE, "boot_time"), sc.pilot_price

    def _submitted(self, ids):
        now, sc = self.sim.clock.now(), self.sim.scenario
        for jid in ids:
            ad = self.sim.schedd.jobs[jid]
            if ad.get(attributes.FACTORY) is None:
                continue
            vm = self._new(VM(jid, ad.get(attributes.QUEUE), self.ITYPE, sc.pilot_cpus, sc.pilot_memory,
                              sc.pilot_price, now))
            self._timer(now + self._boot_time(self.ITYPE), "boot", vm.id)

    def _removed(self, ids):
        now = self.sim.clock.now()
        for jid in ids:
            vm = self.live.get(jid)
            if vm is not None:
                self.sim.pool.machines.pop(self._name(vm), None)
                self._end(vm, now)

    @staticmethod
    def _name(vm):
        return f"slot1@pilot-{vm.id}"

    def on_boot(self, vm, now):
        sc, schedd = self.sim.scenario, self.sim.schedd
        schedd.set_status([vm.id], 2)
        if self.sim.rng.random() < sc.for_type(self.ITYPE, "boot_failure_rate"):
            vm.failed = True
            self._timer(now + sc.fail_after, "exit", vm.id)
            return
        name = self._name(vm)
        self.sim.pool.machines[name] = StartdAd({
            "Name": name, "Machine": f"pilot-{vm.id}", "MyType": "Machine", "Cpus": vm.cpus, "Memory": vm.memory,
            "TotalCpus": vm.cpus, "TotalMemory": vm.memory, "State": "Unclaimed", "Activity": "Idle",
            "EnteredCurrentState": int(now), attributes.FACTORY: self.sim.cfg.factory_id,
            attributes.QUEUE: vm.queue, "PilotJobId": vm.id})
        self.machine_idle(None, now, vm)

    def machine_idle(self, machine, now, vm=None):
        vm = vm or machine.vm
        if vm is not None and self.sim.scenario.pilot_idle_timeout:
            self._timer(now + self.sim.scenario.pilot_idle_timeout, "idle_check", vm.id)

    def on_idle_check(self, vm, now):
        m = self.sim.machines.get(self._name(vm))
        ad = self.sim.pool.machines.get(self._name(vm))
        if ad is None or (m is not None and m.jobs):
            return
        since = ad.get("EnteredCurrentState") or now
        if now - since >= self.sim.scenario.pilot_idle_timeout:
            self.on_exit(vm, now)

    def on_exit(self, vm, now):
        self.sim.pool.machines.pop(self._name(vm), None)
        if vm.id in self.sim.schedd.jobs:
            self.sim.schedd.finish([vm.id])
        self._end(vm, now)

    def vm_of(self, ad):
        return self.live.get(ad.get("PilotJobId"))

    def close(self, now):
        for vm in list(self.live.values()):
            self._end(vm, now)


class Cloud(Backend):
    """The EMULATED EC2 (``provisioner.cloud.emulator``) behind the ec2 target.

    Instance types are the queues' own (their ``instance_types`` and specs). Boot
    times, per-type boot failures (an image that never joins) and spot
    interruptions come from the scenario. A VM whose startd stays unclaimed for the
    queue's ``idle_shutdown`` powers itself off, as the user-data configures it.
    """

    def attach(self, sim):
        from provisioner.cloud import emulator, sizing

        super().attach(sim)
        self.types, self.refs = {}, {}
        for q in sim.cfg.enabled_queues:
            try:
                qtypes = sizing.queue_types(q)
            except ValueError:
                continue
            for t in qtypes:
                self.types[t.name] = (t.cpus, t.memory, t.gpus, t.price)
            first = qtypes[0]
            self.refs[q.name] = (first.cpus, first.memory, min(sim.scenario.for_type(t.name, "boot_time") for t in qtypes),
                                 first.price)
        self.ec2 = emulator.EmulatedEC2(sim.clock, sim.pool, types=self.types,
                                        boot_time=lambda rng, itype: self._boot_time(itype), seed=sim.scenario.seed,
                                        vcpu_quota=sim.scenario.vcpu_quota)
        self.idle_shutdown = {q.name: q.batchsubmit.opts.get("idle_shutdown") for q in sim.cfg.enabled_queues}
        self._seen, self._calls, self._machine = set(), (0, 0), {}

    def extra(self):
        from provisioner.cloud import emulator_libcloud

        return {"ec2": self.ec2.client, "libcloud": emulator_libcloud.driver_factory(self.ec2),
                "sleep": lambda seconds: None}

    def reference(self, queue):
        if queue in self.refs:
            return self.refs[queue]
        sc = self.sim.scenario
        return sc.pilot_cpus, sc.pilot_memory, sc.for_type(PilotSite.ITYPE, "boot_time"), sc.pilot_price

    def advance(self, now):
        calls = (self.ec2.calls.get("run_instances", 0), self.ec2.calls.get("terminate_instances", 0))
        if calls != self._calls:  # only the factory's calls launch or terminate
            self._calls = calls
            self._adopt()
            for vm in [v for v in self.live.values() if self.ec2.instances[v.id].ended is not None]:
                self._end(vm, self.ec2.instances[vm.id].ended)
        super().advance(now)

    def _adopt(self):
        """Instances launched since the last look become VM records with a boot timer."""
        from provisioner.cloud import tags

        sc = self.sim.scenario
        for iid, inst in self.ec2.instances.items():
            if iid in self._seen:
                continue
            self._seen.add(iid)
            inst.joins = self.sim.rng.random() >= sc.for_type(inst.type, "boot_failure_rate")
            cpus, memory, _, price = self.types[inst.type]
            vm = self._new(VM(iid, inst.tags.get(tags.QUEUE, ""), inst.type, cpus, memory, price, inst.launched,
                              failed=not inst.joins))
            self._timer(inst.ready_at, "boot", vm.id)

    def on_boot(self, vm, now):
        self.ec2.advance(now)
        rate = self.sim.scenario.for_type(vm.itype, "spot_interruptions_per_hour")
        inst = self.ec2.instances.get(vm.id)
        if inst is not None and inst.joins and inst.market == "spot" and rate > 0:
            self._timer(now + self.sim.rng.expovariate(rate / 3600.0), "interrupt", vm.id)
        if inst is not None and inst.joins and self.idle_shutdown.get(vm.queue):
            # STARTD_NOCLAIM_SHUTDOWN counts from the startd's start too: a VM never claimed powers off
            self._timer(now + self.idle_shutdown[vm.queue], "idle_check", vm.id)

    def on_interrupt(self, vm, now):
        inst = self.ec2.instances.get(vm.id)
        if inst is None or inst.ended is not None:
            return
        self.ec2.shut_down(vm.id, now)
        vm.interrupted = True
        self._end(vm, now)

    def machine_idle(self, machine, now):
        vm = machine.vm
        timeout = self.idle_shutdown.get(vm.queue) if vm is not None else None
        if timeout:
            self._machine[vm.id] = machine
            self._timer(now + timeout, "idle_check", vm.id)

    def on_idle_check(self, vm, now):
        """The VM's own idle shutdown: the startd stayed unclaimed, the VM powers off (and stops billing)."""
        inst = self.ec2.instances.get(vm.id)
        m = self._machine.get(vm.id)
        if m is None:  # never claimed yet: find its machine once
            m = self._machine[vm.id] = next((x for x in self.sim.machines.values() if x.vm is vm), None)
        if inst is None or inst.ended is not None or m is None or m.jobs or m.ad.get("Draining"):
            return
        if now - (m.ad.get("EnteredCurrentState") or now) < self.idle_shutdown[vm.queue]:
            return
        self.ec2.shut_down(vm.id, now)
        self._end(vm, now)

    def vm_of(self, ad):
        from provisioner.cloud import tags

        return self.live.get(ad.get(tags.INSTANCE_ATTR))

    def close(self, now):
        for vm in list(self.live.values()):
            self._end(vm, now)


class Mixed(Backend):
    """A config with both cloud queues and pilot queues: each kind gets its own back end."""

    def __init__(self):
        super().__init__()
        self.cloud, self.site = Cloud(), PilotSite()
        self.parts = (self.cloud, self.site)

    def attach(self, sim):
        super().attach(sim)
        for part in self.parts:
            part.attach(sim)

    def extra(self):
        return {**self.site.extra(), **self.cloud.extra()}

    def next_event(self):
        return min(part.next_event() for part in self.parts)

    def advance(self, now):
        for part in self.parts:
            part.advance(now)

    def alive(self):
        return sum(part.alive() for part in self.parts)

    def booting(self):
        return sum(part.booting() for part in self.parts)

    def cost(self, now):
        return sum(part.cost(now) for part in self.parts)

    def vms(self):
        return self.cloud.vms() + self.site.vms()

    def vm_of(self, ad):
        return self.cloud.vm_of(ad) or self.site.vm_of(ad)

    def machine_idle(self, machine, now):
        owner = self.cloud if machine.vm is not None and machine.vm.id in self.cloud.live else self.site
        owner.machine_idle(machine, now)

    def reference(self, queue):
        return self.cloud.reference(queue) if queue in self.cloud.refs else self.site.reference(queue)

    def close(self, now):
        for part in self.parts:
            part.close(now)


def for_config(cfg) -> Backend:
    """The emulated cloud for queues with a cloud target, an emulated pilot site for the others."""
    from provisioner.cloud.target import CloudTarget

    kinds = {issubclass(q.batchsubmit.cls, CloudTarget) for q in cfg.enabled_queues}
    if kinds == {True, False}:
        return Mixed()
    return Cloud() if True in kinds else PilotSite()
