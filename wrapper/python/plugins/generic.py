"""generic: downloads the pilot tarball of the chosen pilot type and runs its entry.

The tarball is one of --wrapperpilotcodeurl (weighted by
--wrapperpilotcoderatio) or else <serverurl>/<pilottype>.tar.gz. Its entry
script (run.sh) sits at the top or in the tarball's one top directory and
gets the options neither stage knows.
"""
import os

from wrapperlib.errors import BAD_OPTION, DOWNLOAD, WrapperError
from wrapperlib.fetch import DOWNLOAD_TOOLS

from .base import Plugin


class Generic(Plugin):
    entry = "run.sh"
    required_programs = (DOWNLOAD_TOOLS, "tar")

    def validate(self):
        self.url = self.pilot_url()

    def pilot_url(self):
        opts = self.opts
        if opts.pilotcodeurl:
            urls = opts.pilotcodeurl.split(",")
            ratio = opts.pilotcoderatio or ",".join("1" * len(urls))
            weights = [int(weight) for weight in ratio.split(",")]
            if len(weights) != len(urls) or not sum(weights):
                raise WrapperError(BAD_OPTION, "--wrapperpilotcoderatio: needs one weight per URL, not all zero")
            return self.picker.pick(list(zip(urls, weights)))
        if not (opts.serverurl and self.pilottype):
            raise WrapperError(BAD_OPTION, "plugin %s needs --wrapperpilotcodeurl, or "
                                           "--wrapperserverurl and a pilot type" % self.name)
        return "%s/%s.tar.gz" % (opts.serverurl.rstrip("/"), self.pilottype)

    def download(self):
        self.log.info("pilot type %s from %s" % (self.pilottype, self.url))
        pilot = self.fetch(self.url, "pilot", self.opts.pilotchecksum)
        self.entry_path = find_entry(pilot, self.entry)
        self.payload_cwd = os.path.dirname(self.entry_path)

    def command(self):
        return [self.entry_path] + self.args


def find_entry(directory, entry):
    """directory/entry, or directory/<its only subdirectory>/entry."""
    candidates = [os.path.join(directory, entry)]
    subdirectories = [name for name in os.listdir(directory) if os.path.isdir(os.path.join(directory, name))]
    if len(subdirectories) == 1:
        candidates.append(os.path.join(directory, subdirectories[0], entry))
    for path in candidates:
        if os.path.isfile(path):
            if not os.access(path, os.X_OK) and not entry.endswith(".py"):
                raise WrapperError(DOWNLOAD, "pilot entry %s is not executable" % entry)
            return path
    raise WrapperError(DOWNLOAD, "pilot tarball has no %s" % entry)
