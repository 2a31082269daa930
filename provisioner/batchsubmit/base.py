"""A target submits N pilots (or VMs) in one transaction and may retire some."""
from typing import List, Optional

from provisioner.plugin import Plugin


class Target(Plugin):
    family = "batchsubmit"
    #: False where a submitted pilot cannot be taken back (the decision is then logged, not acted on)
    can_retire = False
    #: the batchstatus plugin that sees this target's pilots, where they are no HTCondor jobs:
    #: the queue's default, and batchstatus Condor, which would never see them, is refused
    batchstatus: Optional[str] = None

    def validate(self) -> None:
        """Raise ProvisionerError if this queue's settings cannot work (called at start-up)."""

    def submit(self, n: int, ctx, launch_id: str) -> List[str]:
        """Create n pilots in ONE transaction or API call; return their ids."""
        raise NotImplementedError

    def retire(self, n: int, ctx) -> List[str]:
        """Take back up to n pilots without killing running work; return their ids."""
        raise NotImplementedError

    def recheck_after(self, action: str, ids: List[str]) -> Optional[float]:
        """Seconds after which the queue should cycle again, sooner than its interval, to
        finish what this action started; None to keep the interval."""
        return None
