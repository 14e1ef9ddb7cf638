"""A small YAML reader for comparing rendered Kubernetes manifests, standard library only.

It reads what `kustomize build` (kyaml) and `lookctl render` print: block mappings and
sequences, flow collections, plain / single-quoted / double-quoted scalars (multi-line
too), literal and folded block scalars, comments, `---` document separators, `!!tag`s.
Anchors and aliases are not supported (kyaml expands them before printing); anything it
cannot read raises YamlError, which the caller reports instead of guessing.

Scalars are resolved with the YAML 1.2 core schema and returned as tagged values so that
`"1"` (string) and `1` (int) or `true` and `1` never compare equal:
  None, ("bool", b), ("int", i), ("float", f), ("str", s).
Mappings become dicts (key order ignored when comparing), sequences lists.
"""
import re


class YamlError(Exception):
    pass


_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def resolve_plain(s):
    if s in ("", "~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return ("bool", True)
    if s in ("false", "False", "FALSE"):
        return ("bool", False)
    if _INT.match(s):
        return ("int", int(s))
    if _OCT.match(s):
        return ("int", int(s[2:], 8))
    if _HEX.match(s):
        return ("int", int(s[2:], 16))
    if _FLOAT.match(s):
        return ("float", float(s))
    if s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"):
        return ("float", float("inf"))
    if s in ("-.inf", "-.Inf", "-.INF"):
        return ("float", float("-inf"))
    if s in (".nan", ".NaN", ".NAN"):
        return ("float", "nan")
    return ("str", s)


def apply_tag(tag, value):
    """Explicit tags: !!str forces a string; other tags resolve the text as usual."""
    if tag in ("!!str", "tag:yaml.org,2002:str"):
        if value is None:
            return ("str", "")
        if value[0] == "str":
            return value
        raise YamlError(f"!!str on a non-plain value {value!r}")
    return value


_ESC = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
        "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
        "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}


def _fold_lines(parts):
    """Line folding of multi-line flow scalars: a single break becomes a space, each
    further empty line a newline."""
    out = parts[0].rstrip(" \t") if len(parts) > 1 else parts[0]
    empties = 0
    for i, p in enumerate(parts[1:], 1):
        last = i == len(parts) - 1
        s = p.strip(" \t") if not last else p.lstrip(" \t")
        if s == "" and not last:
            empties += 1
            continue
        out += ("\n" * empties) if empties else " "
        empties = 0
        out += s
    return out


_JOIN = "\U000FFFFD"


def _protect(esc, ch):
    """Escaped characters are held as private-use placeholders so that line folding
    and blank stripping never touch them."""
    esc.append(ch)
    return chr(0xF0000 + len(esc) - 1)


def parse_double(text, i):
    """text[i] == '"'. Returns (string, index after the closing quote)."""
    i += 1
    buf = []
    esc = []
    while True:
        if i >= len(text):
            raise YamlError("unterminated double-quoted string")
        c = text[i]
        if c == '"':
            i += 1
            break
        if c == "\\":
            n = text[i + 1] if i + 1 < len(text) else ""
            if n == "\n":
                # escaped line break: join without a space, skip leading blanks
                i += 2
                while i < len(text) and text[i] in " \t":
                    i += 1
                buf.append(_JOIN)
                continue
            if n == "x":
                buf.append(_protect(esc, chr(int(text[i + 2:i + 4], 16)))); i += 4; continue
            if n == "u":
                buf.append(_protect(esc, chr(int(text[i + 2:i + 6], 16)))); i += 6; continue
            if n == "U":
                buf.append(_protect(esc, chr(int(text[i + 2:i + 10], 16)))); i += 10; continue
            if n not in _ESC:
                raise YamlError(f"bad escape \\{n}")
            buf.append(_protect(esc, _ESC[n])); i += 2
            continue
        buf.append(c)
        i += 1
    # Fold raw line breaks; escapes are protected from folding and stripping.
    raw = "".join(buf)
    lines = raw.split("\n")
    s = _fold_lines(lines) if len(lines) > 1 else raw
    s = s.replace(_JOIN, "")
    s = "".join(esc[ord(c) - 0xF0000] if 0xF0000 <= ord(c) < 0xF0000 + len(esc) else c
                for c in s)
    return s, i


def parse_single(text, i):
    i += 1
    buf = []
    while True:
        if i >= len(text):
            raise YamlError("unterminated single-quoted string")
        c = text[i]
        if c == "'":
            if text[i + 1:i + 2] == "'":
                buf.append("'"); i += 2; continue
            i += 1
            break
        buf.append(c)
        i += 1
    raw = "".join(buf)
    lines = raw.split("\n")
    return (_fold_lines(lines) if len(lines) > 1 else raw), i


class _Flow:
    """Parser for a flow collection / flow scalar held in one string."""

    def __init__(self, text):
        self.t = text
        self.i = 0

    def ws(self):
        while self.i < len(self.t):
            c = self.t[self.i]
            if c in " \t\n\r":
                self.i += 1
            elif c == "#" and (self.i == 0 or self.t[self.i - 1] in " \t\n"):
                while self.i < len(self.t) and self.t[self.i] != "\n":
                    self.i += 1
            else:
                break

    def value(self):
        self.ws()
        tag = None
        if self.t.startswith("!", self.i):
            j = self.i
            while self.i < len(self.t) and self.t[self.i] not in " \t\n":
                self.i += 1
            tag = self.t[j:self.i]
            self.ws()
        c = self.t[self.i:self.i + 1]
        if c == "[":
            self.i += 1
            out = []
            while True:
                self.ws()
                if self.t[self.i:self.i + 1] == "]":
                    self.i += 1
                    return out
                v = self.value()
                self.ws()
                if self.t[self.i:self.i + 1] == ":":  # single-pair mapping in a sequence
                    self.i += 1
                    v = {hkey(v): self.value()}
                    self.ws()
                out.append(v)
                if self.t[self.i:self.i + 1] == ",":
                    self.i += 1
                elif self.t[self.i:self.i + 1] != "]":
                    raise YamlError("bad flow sequence")
        if c == "{":
            self.i += 1
            out = {}
            while True:
                self.ws()
                if self.t[self.i:self.i + 1] == "}":
                    self.i += 1
                    return out
                k = self.value()
                self.ws()
                v = None
                if self.t[self.i:self.i + 1] == ":":
                    self.i += 1
                    self.ws()
                    if self.t[self.i:self.i + 1] in (",", "}"):
                        v = None
                    else:
                        v = self.value()
                    self.ws()
                out[hkey(k)] = v
                if self.t[self.i:self.i + 1] == ",":
                    self.i += 1
                elif self.t[self.i:self.i + 1] != "}":
                    raise YamlError("bad flow mapping")
        if c == '"':
            s, self.i = parse_double(self.t, self.i)
            return apply_tag(tag, ("str", s))
        if c == "'":
            s, self.i = parse_single(self.t, self.i)
            return apply_tag(tag, ("str", s))
        # plain scalar inside flow context
        j = self.i
        while self.i < len(self.t):
            ch = self.t[self.i]
            if ch in ",[]{}":
                break
            if ch == ":" and (self.i + 1 >= len(self.t) or self.t[self.i + 1] in " \t\n,]}"):
                break
            if ch == "#" and self.t[self.i - 1] in " \t\n":
                break
            self.i += 1
        raw = self.t[j:self.i]
        s = _fold_lines(raw.split("\n")).strip()
        return apply_tag(tag, resolve_plain(s))


def hkey(v):
    """Mapping keys must be hashable: scalars stay tagged tuples."""
    if isinstance(v, (dict, list)):
        raise YamlError("complex mapping key")
    return v


def _strip_comment(s):
    """Removes a trailing comment from a line, outside quotes."""
    q = None
    for i, c in enumerate(s):
        if q:
            if c == q:
                q = None
            elif c == "\\" and q == '"':
                pass
            continue
        if c in "\"'" and (i == 0 or s[i - 1] in " \t[{,:-"):
            q = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip()
    return s


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _find_colon(s):
    """Index of the mapping-key ':' in a block line (outside quotes and flow), or -1."""
    i = 0
    if s[:1] in "\"'":
        try:
            _, i = (parse_double if s[0] == '"' else parse_single)(s, 0)
        except (YamlError, IndexError, ValueError):
            return -1
        rest = s[i:].lstrip(" ")
        return i + (len(s[i:]) - len(rest)) if rest.startswith(":") else -1
    if s[:1] in "[{":
        return -1
    while i < len(s):
        c = s[i]
        if c == ":" and (i + 1 == len(s) or s[i + 1] in " \t"):
            return i
        if c == "#" and i > 0 and s[i - 1] in " \t":
            return -1
        i += 1
    return -1


_BLOCK = re.compile(r"^([|>])([0-9]?)([-+]?)([0-9]?)$")


class _Block:
    def __init__(self, text):
        self.lines = text.split("\n")
        self.n = 0

    def skip_blank(self):
        while self.n < len(self.lines):
            s = self.lines[self.n].strip()
            if s == "" or s.startswith("#"):
                self.n += 1
            else:
                break

    def node(self, min_indent):
        """Parses the node starting on the next non-blank line, if that line is indented at
        least min_indent; else returns None."""
        self.skip_blank()
        if self.n >= len(self.lines):
            return None
        line = self.lines[self.n]
        ind = _indent(line)
        if ind < min_indent:
            return None
        body = line[ind:]
        if body == "-" or body.startswith("- ") or body.startswith("-\t"):
            return self.seq(ind)
        if _find_colon(_strip_comment(body)) >= 0:
            return self.mapping(ind)
        # a scalar (or flow collection) on its own line(s)
        return self.inline(body, ind - 1, self.n)

    def seq(self, ind):
        out = []
        while True:
            self.skip_blank()
            if self.n >= len(self.lines):
                break
            line = self.lines[self.n]
            if _indent(line) != ind:
                break
            body = line[ind:]
            if not (body == "-" or body.startswith("- ") or body.startswith("-\t")):
                break
            rest = body[1:]
            if rest.strip() == "" or rest.strip().startswith("#"):
                self.n += 1
                v = self.node(ind + 1)
                out.append(v)
                continue
            # rewrite "- x" as "  x" and parse the node that starts there
            self.lines[self.n] = " " * (ind + 1) + rest
            out.append(self.node(ind + 1))
        return out

    def mapping(self, ind):
        out = {}
        while True:
            self.skip_blank()
            if self.n >= len(self.lines):
                break
            line = self.lines[self.n]
            if _indent(line) != ind:
                if _indent(line) > ind:
                    raise YamlError(f"line {self.n + 1}: unexpected indentation")
                break
            body = _strip_comment(line[ind:])
            if body.startswith("- ") or body == "-":
                break
            c = _find_colon(body)
            if c < 0:
                raise YamlError(f"line {self.n + 1}: expected a mapping key")
            kt = body[:c].rstrip()
            if kt[:1] == '"':
                key = ("str", parse_double(kt, 0)[0])
            elif kt[:1] == "'":
                key = ("str", parse_single(kt, 0)[0])
            else:
                key = resolve_plain(kt)
            if key in out:
                raise YamlError(f"line {self.n + 1}: duplicate key {kt}")
            rest = line[ind + c + 1:]
            if rest.strip() == "" or rest.strip().startswith("#"):
                self.n += 1
                self.skip_blank()
                v = None
                if self.n < len(self.lines):
                    nl = self.lines[self.n]
                    ni = _indent(nl)
                    if ni > ind:
                        v = self.node(ni)
                    elif ni == ind and (nl[ni:].startswith("- ") or nl[ni:] == "-"):
                        v = self.seq(ind)
                out[key] = v
            else:
                out[key] = self.inline(rest, ind, self.n, col=ind + c + 1)
        return out

    def inline(self, rest, parent_ind, lineno, col=None):
        """A value that starts on line lineno after a key / dash (rest is the text after
        it). Consumes continuation lines indented deeper than parent_ind."""
        s = rest.lstrip(" \t")
        tag = None
        if s.startswith("!"):
            m = re.match(r"^(!\S*)\s*(.*)$", s)
            tag, s = m.group(1), m.group(2)
            if s == "" or s.startswith("#"):
                self.n = lineno + 1
                self.skip_blank()
                v = self.node(parent_ind + 1)
                return apply_tag(tag, v) if not isinstance(v, (dict, list)) else v
        if s.startswith("&") or s.startswith("*"):
            raise YamlError(f"line {lineno + 1}: anchors/aliases are not supported")
        m = _BLOCK.match(_strip_comment(s).strip())
        if m:
            return apply_tag(tag, ("str", self.block_scalar(m, parent_ind, lineno)))
        # gather this line plus continuation lines (deeper than parent_ind)
        chunk = [s]
        j = lineno + 1
        while j < len(self.lines):
            l = self.lines[j]
            if l.strip() == "":
                chunk.append("")
                j += 1
                continue
            if _indent(l) <= parent_ind:
                break
            if s[:1] not in "\"'[{" and l.strip().startswith("#"):
                break
            chunk.append(l)
            j += 1
        # drop trailing empty lines from the chunk
        while len(chunk) > 1 and chunk[-1] == "":
            chunk.pop()
            j -= 1
        # blank lines that ended the chunk still belong to no one; fine
        text = "\n".join(chunk)
        if s[:1] in "\"'[{":
            f = _Flow(text)
            v = f.value()
            # consume exactly the lines the flow value used
            used = text[:f.i].count("\n")
            tail = _strip_comment(text[f.i:].split("\n")[0]).strip()
            if tail:
                raise YamlError(f"line {lineno + 1}: trailing text after value: {tail!r}")
            self.n = lineno + used + 1
            return apply_tag(tag, v) if not isinstance(v, (dict, list)) else v
        # plain multi-line scalar
        parts = [_strip_comment(chunk[0])]
        for l in chunk[1:]:
            if l.strip().startswith("#"):
                break
            parts.append(_strip_comment(l) if l.strip() else "")
        self.n = j
        text = _fold_lines([p.strip() for p in parts]) if len(parts) > 1 else parts[0].strip()
        return apply_tag(tag, resolve_plain(text))

    def block_scalar(self, m, parent_ind, lineno):
        style, chomp = m.group(1), m.group(3)
        explicit = m.group(2) or m.group(4)
        j = lineno + 1
        content_ind = max(parent_ind, 0) + int(explicit) if explicit else None
        if content_ind is None:
            k = j
            while k < len(self.lines) and self.lines[k].strip() == "":
                k += 1
            content_ind = _indent(self.lines[k]) if k < len(self.lines) else parent_ind + 1
            if content_ind <= parent_ind:
                content_ind = parent_ind + 1
        body = []
        while j < len(self.lines):
            l = self.lines[j]
            if l.strip() == "":
                body.append(l[content_ind:] if len(l) > content_ind else "")
                j += 1
                continue
            if _indent(l) < content_ind:
                break
            body.append(l[content_ind:])
            j += 1
        self.n = j
        # trailing blank lines
        trail = 0
        while body and body[-1].strip() == "" and len(body[-1]) == 0:
            body.pop()
            trail += 1
        if style == "|":
            text = "\n".join(body)
        else:
            text = _fold_simple(body)
        if not body:
            return "\n" * trail if chomp == "+" else ""
        if chomp == "-":
            return text
        if chomp == "+":
            return text + "\n" + "\n" * trail
        return text + "\n"


def _fold_simple(body):
    """Folding for '>' block scalars: lines joined by a space; empty lines become
    newlines; more-indented lines keep their breaks."""
    out = ""
    prev = None  # "text", "empty", "more"
    for l in body:
        if l == "":
            kind = "empty"
        elif l[:1] in (" ", "\t"):
            kind = "more"
        else:
            kind = "text"
        if prev is None:
            out = l
        elif kind == "empty":
            out += "\n"
        elif kind == "text" and prev == "text":
            out += " " + l
        elif kind == "text" and prev == "empty":
            # count of empty lines already added; a break that preceded them is folded
            out += l
        else:
            out += "\n" + l
        prev = kind if not (kind == "empty" and prev is None) else "empty"
    # A run of N empty lines between two text lines means N newlines: we appended one
    # per empty line and no break for the first, which matches the spec.
    return out


def load_all(text):
    """Parses a multi-document stream; returns the list of non-empty documents."""
    docs, cur = [], []
    for line in text.split("\n"):
        if line == "---" or line.startswith("--- ") or line == "...":
            docs.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    docs.append("\n".join(cur))
    out = []
    for d in docs:
        b = _Block(d)
        v = b.node(0)
        b.skip_blank()
        if b.n < len(b.lines):
            raise YamlError(f"line {b.n + 1}: unparsed text {b.lines[b.n]!r}")
        if v is not None:
            out.append(v)
    return out
