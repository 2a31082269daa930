"""Stage-two plugins: one module per plugin, each defining one subclass of base.Plugin."""
import importlib

from wrapperlib.errors import PLUGIN, WrapperError
from wrapperlib.lookup import NOT_PLUGINS, PLUGIN_RE

from .base import Plugin


def load(name):
    """The Plugin subclass defined in plugins/<name>.py."""
    if not PLUGIN_RE.match(name) or name in NOT_PLUGINS:
        raise WrapperError(PLUGIN, "invalid plugin name %r" % name)
    try:
        module = importlib.import_module("plugins." + name)
    except ImportError as exc:
        raise WrapperError(PLUGIN, "plugin %r cannot be loaded: %s" % (name, exc)) from None
    except Exception as exc:  # whatever its code raised on import: one line, not a traceback
        raise WrapperError(PLUGIN, "plugin %r cannot be loaded: %s: %s" % (name, type(exc).__name__, exc)) from None
    classes = [
        value for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Plugin) and value.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise WrapperError(PLUGIN, "plugins/%s.py must define one Plugin subclass, found %d" % (name, len(classes)))
    return classes[0]
