"""What every plugin shares: its typed options and the services it may use."""
from typing import ClassVar, Dict

from provisioner.options import Option


class Plugin:
    family: ClassVar[str] = ""
    name: ClassVar[str] = ""
    #: options read from ``<family>.<name>.<option>`` in the queue section
    options: ClassVar[Dict[str, Option]] = {}

    def __init__(self, queue, opts: dict, services):
        self.queue = queue  # provisioner.config.QueueConfig
        self.opts = opts
        self.services = services

    @classmethod
    def namespace(cls) -> str:
        return f"{cls.family}.{cls.name}."
