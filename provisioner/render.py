"""Jinja2 rendering of submit descriptions and cloud user-data.

Every configured value goes through a filter that escapes it for its place or
refuses it: no value can end a line, close a quote or expand a submit macro.
Configuration lines for VMs (``config``) are HTCondor configuration: macros are theirs.
"""
import functools
import os
import re

import jinja2

from provisioner.errors import TemplateValueError

_HERE = os.path.dirname(os.path.abspath(__file__))
# Installed, setup.cfg puts templates/ in the package; in a checkout (pip install -e) it is beside it.
TEMPLATES = next((d for d in (os.path.join(_HERE, "templates"), os.path.join(os.path.dirname(_HERE), "templates"))
                  if os.path.isdir(d)), os.path.join(_HERE, "templates"))

_KEY = re.compile(r"^\+?[A-Za-z_][A-Za-z0-9_.]*$")
# Names HTCondor reads as submit-language statements, not as ``name = value``.
_STATEMENTS = {"queue", "if", "elif", "else", "endif"}
# YAML (cloud-init) also ends a line at NEL, U+2028 and U+2029, and refuses the other C1 controls.
_BREAKS = re.compile("[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# A '$' that condor_submit would expand: $(name), or a function such as $ENV(...) or $INT(...).
_MACRO = re.compile(r"(\$+)(?=\(|[A-Za-z_][A-Za-z0-9_]*\()")


class PerPilot:
    """A value naming one pilot: the configured ``prefix`` and ``suffix`` escaped like any
    value, and between them the pilot's job id, left to condor_submit to expand."""
    JOB_ID = "$(Cluster).$(Process)"

    def __init__(self, prefix: str, suffix: str = ""):
        self.prefix, self.suffix = prefix, suffix


def _plain(value) -> str:
    if isinstance(value, PerPilot):
        return _plain(value.prefix) + PerPilot.JOB_ID + _plain(value.suffix)
    text = config_line(value)

    def escape(match):
        # $(DOLLAR) is HTCondor's escape for a '$'; any other '$' is kept as it is. Two
        # spellings have no escape: '$$(', a match-time macro, and the text '$(DOLLAR)'.
        if len(match.group(1)) > 1:
            raise TemplateValueError(f"value {text!r} contains '$$' before '(': HTCondor would expand it "
                                     f"from the machine at match time")
        if text[match.end():match.end() + 8].upper() == "(DOLLAR)":
            raise TemplateValueError(f"value {text!r} contains '$(DOLLAR)', which HTCondor always expands")
        return "$(DOLLAR)"

    return _MACRO.sub(escape, text)


def config_line(value) -> str:
    """One line of HTCondor configuration, macros and all: only a line break is refused."""
    text = str(value)
    if _BREAKS.search(text):
        raise TemplateValueError(f"value {text!r} contains a line break or control character")
    return text


def submit_value(value) -> str:
    """A bare submit-file value (the rest of the line after ``key =``)."""
    text = _plain(value).strip()
    if text.endswith("\\"):  # a trailing backslash continues the line: it would swallow the next command
        raise TemplateValueError(f"value {text!r} ends with a backslash")
    return text


def classad_string(value) -> str:
    """A ClassAd string literal, for ``+Attr = ...``. condor_submit reads these in the old
    ClassAd syntax, where only ``\\"`` is an escape: a backslash is kept as it is."""
    return '"' + _plain(value).replace('"', '\\"') + '"'


def _quote_word(word: str) -> str:
    # HTCondor's new argument/environment syntax: '' and "" escape quotes.
    return "'" + word.replace("'", "''").replace('"', '""') + "'"


def submit_arguments(words) -> str:
    """A list of arguments in HTCondor's new (double-quoted) syntax."""
    return '"' + " ".join(_quote_word(_plain(w)) for w in words) + '"'


def submit_environment(pairs) -> str:
    """A mapping as the new ``environment = "K='v' ..."`` syntax."""
    out = []
    for key, value in pairs.items():
        out.append(f"{submit_key(key)}={_quote_word(_plain(value))}")
    return '"' + " ".join(out) + '"'


def submit_key(value) -> str:
    """An attribute or command name: refused unless it is a plain identifier."""
    if not _KEY.match(str(value)) or str(value).lower() in _STATEMENTS:
        raise TemplateValueError(f"{value!r} is not a valid attribute name")
    return str(value)


def yaml_string(value) -> str:
    """A double-quoted YAML scalar (cloud-init user-data)."""
    text = str(value)
    if "\x00" in text:
        raise TemplateValueError("value contains a NUL character")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def shell_word(value) -> str:
    """One single-quoted POSIX shell word."""
    text = str(value)
    if "\x00" in text:
        raise TemplateValueError("value contains a NUL character")
    return "'" + text.replace("'", "'\"'\"'") + "'"


@functools.lru_cache(maxsize=None)
def environment(directory: str = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(directory), undefined=jinja2.StrictUndefined,
                             autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(value=submit_value, string=classad_string, arguments=submit_arguments,
                       environ=submit_environment, key=submit_key, yaml=yaml_string, sh=shell_word,
                       config=config_line)
    return env


def render(name: str, **values) -> str:
    return environment().get_template(name).render(**values)
