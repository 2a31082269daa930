"""Exceptions that carry enough context for a one-line message."""


class ProvisionerError(Exception):
    """Base of every error the CLI turns into a one-line message."""


class InputError(ProvisionerError):
    """Bad input from the user (a config, a trace): the CLI exits 2."""


class ConfigError(ProvisionerError):
    def __init__(self, path, section, option, message):
        self.path, self.section, self.option = path, section, option
        where = f"{path}: [{section}]" if section else f"{path}"
        if option:
            where += f" {option}"
        super().__init__(f"{where}: {message}")


class ConfigErrors(InputError):
    """All problems found in one validation pass, reported together."""

    def __init__(self, errors):
        self.errors = list(errors)
        # one line each: a path or value read across continuation lines must not split one
        super().__init__("\n".join(str(e).replace("\n", "\\n") for e in self.errors))


class SourceError(ProvisionerError):
    """A status source could not be read this cycle."""


class TargetError(ProvisionerError):
    """A target refused or failed an action."""


class TemplateValueError(ProvisionerError):
    """A configured value would break out of its place in a rendered file."""
