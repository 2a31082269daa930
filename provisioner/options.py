"""Typed option specs: every plugin declares what it reads, parsed once up front."""
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
# Integers go into ClassAds, sqlite and time arithmetic, all 64-bit: a larger one is a typo, not a value.
_MAX_INT = 2 ** 63 - 1


@dataclass(frozen=True)
class Option:
    type: str = "str"  # str, int, float, bool, list, expr, secret
    default: Any = None
    required: bool = False
    help: str = ""
    choices: tuple = ()
    minimum: Optional[float] = None
    check: Optional[Callable[[Any], Optional[str]]] = None  # returns an error text

    @property
    def secret(self) -> bool:
        return self.type == "secret"

    def parse(self, raw: Optional[str]) -> Any:
        """Turn the INI text into a typed value; raise ValueError with a short reason."""
        text = None if raw is None else raw.strip()
        if self.required and text in (None, "", "None", "none"):
            raise ValueError("a value is required")
        if text in (None, "None", "none"):  # APF read both as None
            return self.default
        if not text and self.type == "str" and self.default:
            # Empty is neither the default nor a value: `logserver.address =` would listen everywhere.
            raise ValueError(f"must not be empty (leave the option out for its default, {self.default})")
        value: Any
        if self.type == "int":
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"expected an integer, got {text!r}") from None
            if abs(value) > _MAX_INT:
                raise ValueError(f"beyond a 64-bit integer (at most {_MAX_INT} either way), got {text!r}")
        elif self.type == "float":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {text!r}")
        elif self.type == "bool":
            if text.lower() in _TRUE:
                value = True
            elif text.lower() in _FALSE:
                value = False
            else:
                raise ValueError(f"expected True or False, got {text!r}")
        elif self.type == "list":
            value = split_list(text)
        elif self.type == "expr":
            value = _check_expr(text)
        else:
            value = raw.strip() if self.type != "secret" else raw
        if self.minimum is not None and value is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}, got {value}")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise ValueError(problem)
        return value


def check_port(value: int) -> Optional[str]:
    """check= of a port to connect to."""
    return None if 1 <= value <= 65535 else f"must be a port, 1 to 65535, got {value}"


def split_host_port(text: str) -> tuple:
    """(host, port) of ``host[:port]`` or ``[ipv6][:port]``; port is '' when not given."""
    t = text.strip()
    if t.rfind(":") > t.rfind("]"):
        host, _, port = t.rpartition(":")
        return host, port
    return t, ""


def check_host_port(text: str) -> Optional[str]:
    """check= of a ``host[:port]`` value (a CE's address): a typo is found here, not by every submit."""
    if "\n" in text:  # the templates' check refuses line breaks in any value, saying so
        return None
    host, port = split_host_port(text)
    bracketed = host.startswith("[") and host.endswith("]")
    if not host or any(c.isspace() or c in "/@" for c in host) or \
            (not bracketed and any(c in host for c in "[]:")):
        return f"expected host or host:port, got {text.strip()!r}"
    if port and (not port.isdigit() or check_port(int(port))):  # "host:": the default port
        return f"the port of {text.strip()!r} must be 1 to 65535"
    return None


def split_list(text: str) -> list:
    r"""Comma list where ``\,`` is a literal comma (APF's convention)."""
    items, cur, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] == ",":
            cur.append(",")
            i += 2
            continue
        if text[i] == ",":
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(text[i])
        i += 1
    items.append("".join(cur).strip())
    return [x for x in items if x]


def _check_expr(text: str) -> str:
    import classad2

    try:
        classad2.ExprTree(text)
    except Exception as exc:  # classad2 raises its own ClassAdException
        raise ValueError(f"not a ClassAd expression ({exc})") from None
    return text


# Free-form options (a libcloud driver's ``driver.<name>``) have no declared type: mask by name.
_SECRET_NAME = re.compile(r"secret|passw|token|credential|(^|_)key$|apikey", re.I)


def mask(option: Option, value: Any, name: str = "") -> Any:
    secret = option.secret or bool(name and _SECRET_NAME.search(name))
    return "********" if secret and value not in (None, "") else value
