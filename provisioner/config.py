"""APF-compatible INI configuration, validated once into typed objects.

``factory.conf`` has a ``[Factory]`` section naming the queue files; each queue
file has one section per queue with ``[DEFAULT]`` inherited. Every problem is
collected as a one-line ``file: [section] option: message`` and raised together.
"""
import codecs
import configparser
import difflib
import glob
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from provisioner import plugins
from provisioner.errors import ConfigError, ConfigErrors
from provisioner.monitor import apfmon
from provisioner.options import Option, mask

FACTORY_OPTIONS = {
    "factoryid": Option("str", required=True, help="names this factory on every pilot it creates",
                        check=lambda v: None if QUEUE_NAME.match(v) else
                        "letters, digits and _ . @ + - only (it is part of tags, comments and launch ids)"),
    "queueconf": Option("list", [], help="queue files, relative to this file"),
    "queuedirconf": Option("str", None, help="a directory of *.conf queue files"),
    "cycles": Option("int", None, minimum=1, help="stop after this many cycles"),
    "baselogdir": Option("str", "logs", help="pilot logs, relative to this file"),
    "baselogdirurl": Option("str", None, help="URL where baselogdir is served"),
    "statedir": Option("str", None, help="ledger directory (default: baselogdir)"),
    "monitorurl": Option("str", None, help="APF monitor (apfmon) REST endpoint", check=apfmon.check_url),
    "logserver.enabled": Option("bool", False, help="serve status page, metrics and pilot logs"),
    "logserver.address": Option("str", "127.0.0.1"),
    "logserver.port": Option("int", 25880, minimum=0,
                             check=lambda p: f"must be at most 65535, got {p}" if p > 65535 else None),
    "maxperfactory.maximum": Option("int", None, minimum=0),
    "enablequeues": Option("bool", True),
    "factoryadminemail": Option("str", None),
    "factoryuser": Option("str", None),
    # APF's shipped factory.conf sets 14; 0 keeps the logs forever
    "cleanlogs.keepdays": Option("int", 14, minimum=0, help="days pilot logs are kept after their day"),
}

# APF factory options that have no meaning here; accepted so old files load.
FACTORY_IGNORED = re.compile(
    r"^(authconf|monitorconf|proxyconf|mappingsconf|logconf|factorysmtpserver|factoryminemail\w+"
    r"|factoryusername|versiontag|factory\.sleep|proxymanager\..*|logserver\.index|logserver\.allowrobots"
    r"|wmsstatus\..*|batchstatus\..*|config\..*|factory\.checkorphans)$")

QUEUE_OPTIONS = {
    "enabled": Option("bool", True),
    "wmsqueue": Option("str", None, help="the WMS queue this queue feeds (default: section name)"),
    "batchqueue": Option("str", None, help="the batch/CE queue (default: section name)"),
    "wmsstatusplugin": Option("str", "Condor"),
    "batchstatusplugin": Option("str", "Condor"),
    "schedplugin": Option("list", ["Ready"]),
    "batchsubmitplugin": Option("str", required=True),
    "executable": Option("str", None, help="the pilot wrapper each pilot runs"),
    "executable.arguments": Option("str", ""),
    "executable.defaultarguments": Option("str", ""),
    # APF's default; factory.sleep was APF's main loop, which here wakes when a queue is due
    "apfqueue.sleep": Option("int", 360, minimum=1, help="this queue's cycle interval (s)"),
    "cleanlogs.keepdays": Option("int", None, minimum=0, help="days this queue's pilot logs are kept "
                                                              "(default: [Factory]'s)"),
}

# APF queue options kept for compatibility that this factory does not act on.
QUEUE_IGNORED = {"monitorsection", "apfqueue.autofill", "req", "apfqueue.crossjump"}

# What APF's shipped queue files set in [DEFAULT] for features this factory lacks (GRAM and
# ARC RSL, the Panda site's cloud and status, the old wrapper's options): ignored there.
APF_DEFAULTS = re.compile(r"^((globusrsl|nordugridrsl)\..+|cloud|country|group|status|override|autofill"
                          r"|cleanlogs\.maxdays|executable\.(wrapper\w+|specialcmd))$")

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")
_INTERP = re.compile(r"%\(([^)]+)\)s")


@dataclass
class PluginSpec:
    family: str
    name: str
    cls: Any
    opts: Dict[str, Any]
    written: str = ""  # the name as the config spelled it (an APF alias reads its own namespace)

    def effective(self) -> Dict[str, Any]:
        return {f"{self.family}.{self.name}.{k}": mask(self.cls.options[k], v) if k in self.cls.options
                else mask(Option(), v, k) for k, v in self.opts.items()}


@dataclass
class QueueConfig:
    name: str
    path: str
    enabled: bool
    wmsqueue: str
    batchqueue: str
    interval: int
    executable: Optional[str]
    arguments: str
    wmsstatus: PluginSpec
    batchstatus: PluginSpec
    sched: List[PluginSpec]
    batchsubmit: PluginSpec
    keepdays: Optional[int] = None  # cleanlogs.keepdays; load() puts the [Factory] value in for None
    ignored: List[str] = field(default_factory=list)
    raw: Dict[str, str] = field(default_factory=dict, repr=False)  # the section's values as read

    @property
    def plugins(self) -> List[PluginSpec]:
        return [self.wmsstatus, self.batchstatus, *self.sched, self.batchsubmit]

    def option(self, key: str, default=None):
        """A typed option of any plugin this queue uses, by its full name."""
        for spec in self.plugins:
            prefix = f"{spec.family}.{spec.name}."
            if key.startswith(prefix) and key[len(prefix):] in spec.opts:
                return spec.opts[key[len(prefix):]]
        return default


@dataclass
class FactoryConfig:
    path: str
    factory_id: str
    cycles: Optional[int]
    log_dir: str
    log_url: Optional[str]
    state_dir: str
    monitor_url: Optional[str]
    options: Dict[str, Any]
    queues: List[QueueConfig]
    ignored: List[str] = field(default_factory=list)

    @property
    def enabled_queues(self) -> List[QueueConfig]:
        return [q for q in self.queues if q.enabled]


def read_ini(path: str, errors: list, interpolate: bool = True) -> Optional[configparser.ConfigParser]:
    """The parsed file, or None with one ConfigError (unreadable, or at ``file:line``) added."""
    cp = configparser.ConfigParser(interpolation=configparser.BasicInterpolation() if interpolate else None)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        errors.append(ConfigError(path, None, None, f"cannot read: {exc.strerror}"))
        return None
    data = data.removeprefix(codecs.BOM_UTF8)  # an editor's byte order mark is no text before [section]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        errors.append(ConfigError(f"{path}:{line}", None, None, f"not UTF-8 (byte 0x{data[exc.start]:02x}): "
                                                                "save the file as UTF-8"))
        return None
    try:
        cp.read_string(text, source=path)
    except configparser.Error as exc:
        errors.append(_parse_error(path, exc))
        return None
    return cp


def _parse_error(path: str, exc: configparser.Error) -> ConfigError:
    """One line at ``file:line``, without the offending text: it may hold a secret."""
    if isinstance(exc, configparser.DuplicateSectionError):
        return ConfigError(f"{path}:{exc.lineno}", None, None, f"section [{exc.section}] is already defined")
    if isinstance(exc, configparser.DuplicateOptionError):
        return ConfigError(f"{path}:{exc.lineno}", exc.section, exc.option, "option is already set in this section")
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return ConfigError(f"{path}:{exc.lineno}", None, None, "text before the first [section] header")
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        return ConfigError(f"{path}:{exc.errors[0][0]}", None, None, "not a 'key = value' line, a [section] "
                                                                     "header or a comment")
    return ConfigError(path, None, None, type(exc).__name__)


def _interpolation_error(exc: configparser.InterpolationError) -> str:
    """Why a value cannot be interpolated, without the value: it may hold a secret."""
    if isinstance(exc, configparser.InterpolationMissingOptionError):
        return f"%({exc.reference})s names no option of this section or [DEFAULT]"
    if isinstance(exc, configparser.InterpolationDepthError):
        return "interpolation nested too deep (does it refer to itself?)"
    if exc.message.startswith("bad interpolation variable reference"):  # "%(x)" without its "s"
        return "'%(name)' must be followed by 's' (write %% for a literal %)"
    return "'%' must be followed by '%' or '(' (write %% for a literal %)"


def _inherited(cp, section, key) -> bool:
    return key in cp.defaults() and cp.get(section, key, raw=True) == cp.defaults()[key]


def _add_once(errors: list, err: ConfigError) -> None:
    """A [DEFAULT] key is read by every section: report it once."""
    if str(err) not in map(str, errors):
        errors.append(err)


def _items(cp, path, section, errors) -> Dict[str, str]:
    out = {}
    for key in cp.options(section):
        try:
            out[key] = cp.get(section, key)
        except configparser.InterpolationError as exc:
            err = ConfigError(path, "DEFAULT" if _inherited(cp, section, key) else section, key,
                              _interpolation_error(exc))
            _add_once(errors, err)
    return out


def _parse(option: Option, raw, path, section, key, errors):
    try:
        return option.parse(raw)
    except ValueError as exc:
        _add_once(errors, ConfigError(path, section, key, str(exc)))
        return option.default


def load(path: str) -> FactoryConfig:
    """Read factory.conf and every queue file it names; raise ConfigErrors on any problem."""
    errors: list = []
    path = os.path.abspath(path)
    cp = read_ini(path, errors)
    if cp is None:
        raise ConfigErrors(errors)
    if not cp.has_section("Factory"):
        raise ConfigErrors([ConfigError(path, "Factory", None, "section is missing")])
    raw = _items(cp, path, "Factory", errors)
    fopts, ignored = {}, []
    for key, value in raw.items():
        if key in FACTORY_OPTIONS:
            fopts[key] = _parse(FACTORY_OPTIONS[key], value, path, "Factory", key, errors)
        elif FACTORY_IGNORED.match(key) or (key == "configplugin" and value.strip().lower() == "file"):
            ignored.append(f"[Factory] {key}")
        elif key == "configplugin":  # APF's Agis, VC3, ...: their queues would be missing
            errors.append(ConfigError(path, "Factory", key, f"only File is supported: name the queue files "
                                                            f"in queueConf or queueDirConf, got {value.strip()!r}"))
        else:
            hint = plugins.did_you_mean(key, FACTORY_OPTIONS)
            errors.append(ConfigError(path, "Factory", key, f"unknown option{hint}"))
    for key, option in FACTORY_OPTIONS.items():
        if key not in raw:
            fopts[key] = _parse(option, None, path, "Factory", key, errors)
    base = os.path.dirname(path)
    files = [f for f in (_queue_file(base, entry, path, errors) for entry in fopts["queueconf"]) if f]
    if fopts["queuedirconf"]:
        qdir = os.path.join(base, fopts["queuedirconf"])
        if os.path.isdir(qdir):
            found = sorted(glob.glob(os.path.join(glob.escape(qdir), "*.conf")))
            if not found and not fopts["queueconf"]:
                errors.append(ConfigError(path, "Factory", "queuedirconf", f"no *.conf file in {qdir}"))
            files += found
        else:  # a typo would leave its queues out without a word
            errors.append(ConfigError(path, "Factory", "queuedirconf", f"{qdir} is not a directory"))
    elif not fopts["queueconf"]:
        errors.append(ConfigError(path, "Factory", "queueconf", "no queue file given (queueConf or queueDirConf)"))
    queues: List[QueueConfig] = []
    seen: Dict[str, str] = {}
    for qpath in files:
        for q in _load_queues(qpath, errors):
            if q.name in seen:
                errors.append(ConfigError(qpath, q.name, None, f"queue already defined in {seen[q.name]}"))
                continue
            seen[q.name] = qpath
            queues.append(q)
    if errors:
        raise ConfigErrors(errors)
    log_dir = os.path.join(base, fopts["baselogdir"])
    state_dir = os.path.join(base, fopts["statedir"]) if fopts["statedir"] else log_dir
    if not fopts["enablequeues"]:
        for q in queues:
            q.enabled = False
    for spec in (s for q in queues for s in q.sched if s.name == "maxperfactory"):
        if spec.opts["maximum"] is None:  # APF keeps this one in [Factory]: show what applies
            spec.opts["maximum"] = fopts["maxperfactory.maximum"]
    for q in queues:
        if q.keepdays is None:
            q.keepdays = fopts["cleanlogs.keepdays"]
    return FactoryConfig(
        path=path, factory_id=fopts["factoryid"],
        cycles=fopts["cycles"], log_dir=log_dir, log_url=fopts["baselogdirurl"], state_dir=state_dir,
        monitor_url=fopts["monitorurl"], options=fopts, queues=queues, ignored=ignored)


def _queue_file(base: str, entry: str, path: str, errors: list) -> Optional[str]:
    """A queueConf entry as a path, relative to factory.conf; APF also took ``file://`` paths
    (``file:///etc/q.conf``, ``file://q.conf``) and fetched URLs."""
    if entry.startswith("file://"):
        entry = entry[len("file://"):]
    elif "://" in entry:
        errors.append(ConfigError(path, "Factory", "queueconf", f"{entry!r} is a URL: queue files are read "
                                                                "from disk only (fetch it and name the file)"))
        return None
    return os.path.join(base, entry)


def _load_queues(path: str, errors: list) -> List[QueueConfig]:
    cp = read_ini(path, errors)
    if cp is None:
        return []
    _check_defaults(cp, path, errors)
    defaults = set(cp.defaults())
    out = []
    for section in cp.sections():
        q = _load_queue(cp, path, section, defaults, errors)
        if q is not None:
            out.append(q)
    return out


def _check_defaults(cp, path, errors) -> None:
    """[DEFAULT] holds options of plugins some queues do not use and helper keys for %(x)s, which
    its queues list as ignored; any other key there is a typo, which would go unnoticed."""
    values = [*cp.defaults().values(), *(cp.get(s, k, raw=True) for s in cp.sections() for k in cp.options(s))]
    helpers = {cp.optionxform(m) for v in values for m in _INTERP.findall(v)}
    known = {}  # family -> plugin names, listed once: entry points are slow to list
    for key in cp.defaults():
        if key in QUEUE_OPTIONS or key in QUEUE_IGNORED or key in helpers or APF_DEFAULTS.match(key):
            continue
        family, _, rest = key.partition(".")
        if family in plugins.FAMILIES and "." in rest:
            if family not in known:
                known[family] = {*plugins.names(family), *plugins.ALIASES.get(family, {}), *_APF_ONLY.get(family, ())}
            name, _, sub = rest.partition(".")
            if name not in known[family]:
                close = difflib.get_close_matches(name, known[family], n=1, cutoff=0.6)
                hint = f" (did you mean '{family}.{close[0]}.{sub}'?)" if close else ""
                errors.append(ConfigError(path, "DEFAULT", key, f"no {family} plugin is named {name!r}{hint}"))
            continue
        hint = plugins.did_you_mean(key, [*QUEUE_OPTIONS, *QUEUE_IGNORED])
        errors.append(ConfigError(path, "DEFAULT", key, f"unknown option{hint}"))


def _plugin(family, name, path, section, key, errors) -> Optional[PluginSpec]:
    try:
        cls = plugins.load(family, name)
    except LookupError as exc:
        why = str(exc)
        if name.strip().lower() in _APF_ONLY.get(family, ()):  # a did-you-mean would point elsewhere
            why = (f"{name.strip()!r} is an AutoPyFactory plugin this factory does not have "
                   f"({family} plugins here: {', '.join(plugins.names(family))})")
        _add_once(errors, ConfigError(path, section, key, why))
        return None
    return PluginSpec(family, plugins.canonical(family, name), cls, {}, name.strip().lower())


# APF plugins this project does not implement: their keys in an APF file are not typos.
_APF_ONLY = {"batchsubmit": ("condorgt2", "condorgt5", "condorgram", "condorcream", "condordeltacloud",
                             "condorgce", "condorssh", "condorbosco", "condorboinc", "condorlsf", "condorpbs"),
             "batchstatus": ("condorec2",),
             "wmsstatus": ("panda",),
             "sched": ("trivial", "simple", "simplenqueue")}


def _misspelt_plugin(key: str, used) -> Optional[str]:
    """The key as meant, when its plugin part is a near miss of a plugin this queue uses and
    no plugin at all: a typo would silently drop the option (a cap, say) to its default.
    Keys of plugins not in use, ours or APF's, stay ignored."""
    family, _, rest = key.partition(".")
    name, _, sub = rest.partition(".")
    if family not in plugins.FAMILIES or not sub or name in plugins.names(family) \
            or name in plugins.ALIASES.get(family, {}) or name in _APF_ONLY.get(family, ()):
        return None
    mine = [p.split(".")[1] for p in used if p.startswith(family + ".")]
    close = difflib.get_close_matches(name, mine, n=1, cutoff=0.8)
    return f"{family}.{close[0]}.{sub}" if close else None


def _load_queue(cp, path, section, defaults, errors) -> Optional[QueueConfig]:
    before = len(errors)
    if not QUEUE_NAME.match(section):
        # The name lands in paths, attributes and logs: keep it plain.
        errors.append(ConfigError(path, section, None, "queue names may use only letters, digits and _.@+-"))
        return None
    raw = _items(cp, path, section, errors)
    referenced = {m for v in (cp.get(section, k, raw=True) for k in cp.options(section))
                  for m in _INTERP.findall(v)}

    def where(key):
        return "DEFAULT" if key in raw and _inherited(cp, section, key) else section

    top = {k: _parse(o, raw.get(k), path, where(k), k, errors) for k, o in QUEUE_OPTIONS.items()}

    def plugin(family, name, key):
        return _plugin(family, name, path, where(key), key, errors)

    submit = plugin("batchsubmit", top["batchsubmitplugin"], "batchsubmitplugin") if top["batchsubmitplugin"] \
        else None
    status = top["batchstatusplugin"]
    if "batchstatusplugin" not in raw and submit is not None and getattr(submit.cls, "batchstatus", None):
        status = submit.cls.batchstatus  # Condor would never see the VMs or Slurm tasks it submits
    specs = {
        "wmsstatus": [plugin("wmsstatus", top["wmsstatusplugin"], "wmsstatusplugin")],
        "batchstatus": [plugin("batchstatus", status, "batchstatusplugin")],
        "sched": [plugin("sched", s, "schedplugin") for s in top["schedplugin"] or []],
        "batchsubmit": [submit],
    }
    # prefix -> specs reading it: an APF alias reads its own namespace, a step listed twice shares one
    used: Dict[str, list] = {}
    for spec in (s for group in specs.values() for s in group if s):
        for n in {spec.name, spec.written}:
            used.setdefault(f"{spec.family}.{n}.", []).append(spec)
    ignored = []
    rank: Dict[tuple, tuple] = {}
    for key, value in raw.items():
        if key in QUEUE_OPTIONS:
            continue
        prefix = next((p for p in used if key.startswith(p)), None)
        if prefix is not None:
            cls, sub = used[prefix][0].cls, key[len(prefix):]
            if sub in cls.options:
                parsed = _parse(cls.options[sub], value, path, where(key), key, errors)
            elif sub.startswith(getattr(cls, "option_prefixes", ())):
                parsed = value.strip()
            elif sub in getattr(cls, "ignored_options", ()):
                ignored.append(key)
                continue
            else:
                hint = plugins.did_you_mean(sub, cls.options)
                hint = hint.replace("'", f"'{prefix}", 1) if hint else ""
                _add_once(errors, ConfigError(path, where(key), key, f"not an option of {cls.name}{hint}"))
                continue
            for spec in used[prefix]:
                # As in APF, the queue's own value beats [DEFAULT]'s, and an alias's key beats its
                # canonical name's (a [DEFAULT] `condorce.proxy = None` must not undo `condorosgce.proxy`).
                mine = (not _inherited(cp, section, key), prefix == f"{spec.family}.{spec.written}.")
                if mine >= rank.get((id(spec), sub), mine):
                    spec.opts[sub], rank[(id(spec), sub)] = parsed, mine
            continue
        family = key.split(".", 1)[0]
        meant = None if _inherited(cp, section, key) else _misspelt_plugin(key, used)
        if meant:
            errors.append(ConfigError(path, section, key, f"no plugin of this queue is named so "
                                                          f"(did you mean {meant!r}?)"))
            continue
        # APF's RSL and helper keys too: CondorARC says what to use instead of nordugridrsl.*
        if key in QUEUE_IGNORED or (family in plugins.FAMILIES and "." in key) or key in defaults \
                or key in referenced or APF_DEFAULTS.match(key):
            ignored.append(key)
            continue
        known = list(QUEUE_OPTIONS) + [p + o for p, group in used.items() for o in group[0].cls.options]
        errors.append(ConfigError(path, section, key, f"unknown option{plugins.did_you_mean(key, known)}"))
    for prefix, group in used.items():
        for spec in group:
            for sub, option in spec.cls.options.items():
                if sub not in spec.opts:
                    spec.opts[sub] = _parse(option, None, path, section, f"{spec.family}.{spec.name}.{sub}", errors)
    if len(errors) > before:
        return None
    return QueueConfig(
        name=section, path=path, enabled=top["enabled"],
        wmsqueue=top["wmsqueue"] or section, batchqueue=top["batchqueue"] or section,
        interval=top["apfqueue.sleep"], keepdays=top["cleanlogs.keepdays"], executable=top["executable"],
        arguments=top["executable.arguments"], wmsstatus=specs["wmsstatus"][0],
        batchstatus=specs["batchstatus"][0], sched=specs["sched"], batchsubmit=specs["batchsubmit"][0],
        ignored=sorted(ignored), raw=raw)


def queue_from_items(name: str, path: str, items: Dict[str, str]) -> QueueConfig:
    """A queue rebuilt from the values its ``raw`` kept (interpolated, [DEFAULT]'s included),
    as for a removed queue winding down after a restart; ConfigErrors if they no longer load."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_dict({name: items})
    errors: list = []
    q = _load_queue(cp, path, name, set(items), errors)  # what loaded then: no key is unknown now
    if errors:
        raise ConfigErrors(errors)
    return q


def ignored_line(cfg: FactoryConfig) -> Optional[str]:
    """The options that load but mean nothing here (APF helper keys, options of plugins not
    in use), as check-config and run report them; None if there are none."""
    ignored = sorted({i for q in cfg.queues for i in q.ignored} | set(cfg.ignored))
    return "ignored (APF helper keys or options of plugins not in use): " + ", ".join(ignored) if ignored else None


def describe(cfg: FactoryConfig) -> str:
    """The resolved configuration as check-config prints it (secrets masked)."""
    lines = [f"factory {cfg.factory_id} ({cfg.path})", f"  ledger: {cfg.state_dir}", f"  logs: {cfg.log_dir}"]
    for q in cfg.queues:
        state = "enabled" if q.enabled else "disabled"
        lines.append(f"queue {q.name} [{state}] every {q.interval}s from {os.path.basename(q.path)}")
        lines.append(f"  wmsqueue={q.wmsqueue} batchqueue={q.batchqueue}")
        lines.append(f"  executable = {q.executable}")
        lines.append(f"  executable.arguments = {q.arguments}")
        lines.append(f"  cleanlogs.keepdays = {q.keepdays}")
        lines.append("  chain: " + " -> ".join([q.wmsstatus.name, q.batchstatus.name]
                                              + [s.name for s in q.sched] + [q.batchsubmit.name]))
        for spec in q.plugins:
            for k, v in spec.effective().items():
                lines.append(f"  {k} = {v}")
    ignored = ignored_line(cfg)
    if ignored:
        lines.append(ignored)
    return "\n".join(lines)
