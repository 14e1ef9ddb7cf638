//! YAML in and out, the way Kubernetes tooling reads and writes it.
//!
//! Parsing resolves plain scalars like go-yaml v3 (which kustomize and kubectl use), not
//! like serde_yaml: `defaultMode: 0644` is the octal number 420, `0x10` is 16, `1_000` is
//! 1000, `yes`/`on` stay strings, and a whole-number float is an integer, as after
//! kustomize's JSON round trip. Quoted scalars are always strings, which serde_yaml's
//! `Value` cannot tell apart — hence this module on top of an event parser.
//!
//! Emitting follows kustomize's output layout (keys sorted, two-space indent, sequences
//! not indented under their key, multi-line strings as literal blocks) and double-quotes
//! every string that a YAML 1.1 reader such as `kubectl apply -f` would read as something
//! else (`"on"`, `"yes"`, `"0644"`, `"1e3"`, `"~"`).

use serde_yaml::{Mapping, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A parse failure with the 1-based line it happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

/// The largest YAML file lookctl reads. Real manifests (CRD bundles included) are a few
/// MiB; anything near this is a mistake or an attack, and is refused before parsing.
pub const MAX_YAML_BYTES: usize = 64 << 20;
/// How deeply collections may nest. Kubernetes objects nest a dozen levels; the limit
/// keeps every recursive walk over a parsed value (patching, emitting, dropping) far from
/// the stack's end.
pub const MAX_DEPTH: usize = 512;
/// How many nodes aliases may materialise in one stream (each `*alias` copies its
/// anchored value). go-yaml refuses "excessive aliasing" in the same spirit; without a
/// bound a few hundred bytes of nested aliases expand to gigabytes.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// How a stream is read where kustomize reads it differently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    /// Objects (resources, patches): go-yaml v3, a repeated key is an error.
    #[default]
    Objects,
    /// Kustomization files: kustomize decodes them through go-yaml v2, where the last of
    /// repeated keys wins.
    Kustomization,
}

/// Where a document's null mapping values were written as text (`null`, `~`) and where
/// they were left empty (`key:`): kustomize's strategic merge keeps the first and drops
/// the second. Paths are mapping keys joined by `/`, `[]` standing for any list item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NullMarks {
    pub written: Vec<String>,
    pub empty: Vec<String>,
    /// Keys of `metadata.annotations` whose value is a null (`a: null`). An object's
    /// annotation values are read as their text (`"null"`); in a patch such a value
    /// deletes the annotation, so patches need to know.
    pub annotation_nulls: Vec<String>,
}

/// [`parse_stream_as`], plus the [`NullMarks`] of each document.
pub fn parse_stream_marked(
    text: &str,
    dialect: Dialect,
) -> Result<Vec<(Value, NullMarks)>, YamlError> {
    let (docs, marks) = parse_inner(text, dialect, true)?;
    Ok(docs.into_iter().zip(marks).collect())
}

/// Parses a multi-document stream into values; empty documents are dropped.
pub fn parse_stream(text: &str) -> Result<Vec<Value>, YamlError> {
    parse_stream_as(text, Dialect::Objects)
}

/// Parses a multi-document stream read as `dialect`; empty documents are dropped.
///
/// Bounded whatever the input: the size, the nesting depth and alias expansion are
/// limited, and characters YAML forbids (NUL and other control characters) are errors
/// with their line, as in go-yaml's reader. A leading byte-order mark is skipped.
pub fn parse_stream_as(text: &str, dialect: Dialect) -> Result<Vec<Value>, YamlError> {
    parse_inner(text, dialect, false).map(|(docs, _)| docs)
}

fn parse_inner(
    text: &str,
    dialect: Dialect,
    mark_nulls: bool,
) -> Result<(Vec<Value>, Vec<NullMarks>), YamlError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlError {
            line: 1,
            message: format!(
                "the file is {} bytes; lookctl reads YAML files of at most {MAX_YAML_BYTES} bytes",
                text.len()
            ),
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_characters(text)?;
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        clip_at: block_scalar_at_eof(text),
        last_key_wins: dialect == Dialect::Kustomization,
        mark_nulls,
        ..Builder::default()
    };
    loop {
        let (event, mark) = parser.next_token().map_err(|e| YamlError {
            line: e.marker().line(),
            message: e.info().to_owned(),
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.event(event, mark)?;
    }
    Ok((builder.docs, builder.marks))
}

/// The number of the scalar event that is a block scalar running to the end of a file
/// with no final line break. go-yaml gives such a block no trailing newline (there is no
/// line break to keep); the event parser adds one, which this lets the builder take off.
fn block_scalar_at_eof(text: &str) -> Option<usize> {
    let last_line = text.rsplit('\n').next()?;
    if last_line.trim().is_empty() || (last_line.starts_with('#') || last_line.starts_with("...")) {
        return None;
    }
    let mut parser = Parser::new_from_str(text);
    let (mut count, mut last_block) = (0usize, None);
    loop {
        match parser.next_token() {
            Ok((Event::Scalar(_, style, _, _), _)) => {
                last_block =
                    matches!(style, TScalarStyle::Literal | TScalarStyle::Folded).then_some(count);
                count += 1;
            }
            Ok((Event::StreamEnd, _)) | Err(_) => return last_block,
            Ok(_) => {}
        }
    }
}

/// go-yaml's reader check: only tab, LF, CR, printable ASCII, NEL and the printable
/// Unicode ranges may appear in a YAML stream.
fn check_characters(text: &str) -> Result<(), YamlError> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
            || c >= '\u{10000}'
    };
    match text.char_indices().find(|&(_, c)| !allowed(c)) {
        None => Ok(()),
        Some((offset, c)) => Err(YamlError {
            line: text[..offset].matches('\n').count() + 1,
            message: format!(
                "control characters are not allowed (U+{:04X} at byte offset {offset})",
                c as u32
            ),
        }),
    }
}

enum Frame {
    Seq(Vec<Value>, usize),
    /// The mapping, its anchor, a pending key (with its line) and keys from `<<` merges
    /// that explicit keys may still override.
    Map(Mapping, usize, Option<(Value, usize)>, Vec<Value>),
}

#[derive(Default)]
struct Builder {
    docs: Vec<Value>,
    stack: Vec<Frame>,
    /// Anchored values with their size in nodes.
    anchors: std::collections::HashMap<usize, (Value, usize)>,
    /// Nodes materialised by aliases so far.
    alias_nodes: usize,
    /// Scalar events seen, and the one whose final newline is to go (see
    /// [`block_scalar_at_eof`]).
    scalars: usize,
    clip_at: Option<usize>,
    /// A repeated key replaces the earlier one instead of being an error.
    last_key_wins: bool,
    /// Whether to record [`NullMarks`] (one per kept document, in `marks`).
    mark_nulls: bool,
    marks: Vec<NullMarks>,
    current: NullMarks,
}

impl Builder {
    fn event(&mut self, event: Event, mark: Marker) -> Result<(), YamlError> {
        match event {
            Event::Scalar(mut text, style, anchor, tag) => {
                if self.clip_at == Some(self.scalars) && text.ends_with('\n') {
                    text.pop();
                }
                self.scalars += 1;
                let v = if self.at_top_annotation_value() {
                    // kustomize rewrites an object's annotations from the text of each
                    // value, whatever its tag: `a: 0x10` is "0x10", `a: null` is "null".
                    if self.mark_nulls
                        && resolve_scalar(text.clone(), style, tag.as_ref()).is_null()
                        && let Some(Frame::Map(_, _, Some((k, _)), _)) = self.stack.last()
                        && let Some(k) = k.as_str()
                    {
                        self.current.annotation_nulls.push(k.to_owned());
                    }
                    Value::String(text)
                } else {
                    let empty = text.is_empty();
                    let v = resolve_scalar(text, style, tag.as_ref());
                    if self.mark_nulls && v.is_null() {
                        self.mark_null(empty);
                    }
                    v
                };
                self.value(v, anchor, mark)
            }
            Event::Alias(id) => {
                let (v, size) = self.anchors.get(&id).ok_or(YamlError {
                    line: mark.line(),
                    message: "unknown anchor".into(),
                })?;
                self.alias_nodes = self.alias_nodes.saturating_add(*size);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(YamlError {
                        line: mark.line(),
                        message: format!(
                            "document contains excessive aliasing (aliases expand to more than {MAX_ALIAS_NODES} nodes)"
                        ),
                    });
                }
                let v = v.clone();
                self.value(v, 0, mark)
            }
            Event::SequenceStart(anchor, _) => {
                self.check_depth(mark)?;
                self.stack.push(Frame::Seq(Vec::new(), anchor));
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.check_depth(mark)?;
                self.stack
                    .push(Frame::Map(Mapping::new(), anchor, None, Vec::new()));
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (v, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, a)) => (Value::Sequence(items), a),
                    Some(Frame::Map(map, a, _, _)) => (Value::Mapping(map), a),
                    None => return Ok(()),
                };
                self.value(v, anchor, mark)
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd
            | Event::Nothing => Ok(()),
        }
    }

    /// Records where a null mapping value was read (see [`NullMarks`]).
    fn mark_null(&mut self, empty: bool) {
        let Some(Frame::Map(_, _, Some(_), _)) = self.stack.last() else {
            return;
        };
        let mut parts = Vec::with_capacity(self.stack.len());
        for f in &self.stack {
            match f {
                Frame::Seq(..) => parts.push("[]".to_owned()),
                Frame::Map(_, _, Some((k, _)), _) => parts.push(match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .map(|t| t.trim_end().to_owned())
                        .unwrap_or_default(),
                }),
                Frame::Map(..) => return,
            }
        }
        let path = parts.join("/");
        if empty {
            self.current.empty.push(path);
        } else {
            self.current.written.push(path);
        }
    }

    /// Whether the next scalar is a value in a document's `metadata.annotations`.
    fn at_top_annotation_value(&self) -> bool {
        let pending = |f: &Frame, key: &str| matches!(f, Frame::Map(_, _, Some((k, _)), _) if k.as_str() == Some(key));
        matches!(
            self.stack.as_slice(),
            [doc, meta, Frame::Map(_, _, Some(_), _)]
                if pending(doc, "metadata") && pending(meta, "annotations")
        )
    }

    fn check_depth(&self, mark: Marker) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                line: mark.line(),
                message: format!("collections nest more than {MAX_DEPTH} levels deep"),
            });
        }
        Ok(())
    }

    fn value(&mut self, v: Value, anchor: usize, mark: Marker) -> Result<(), YamlError> {
        if anchor > 0 {
            self.anchors.insert(anchor, (v.clone(), node_count(&v)));
        }
        match self.stack.last_mut() {
            None => {
                let marks = std::mem::take(&mut self.current);
                if !v.is_null() {
                    self.docs.push(v);
                    if self.mark_nulls {
                        self.marks.push(marks);
                    }
                }
                Ok(())
            }
            Some(Frame::Seq(items, _)) => {
                items.push(v);
                Ok(())
            }
            Some(Frame::Map(map, _, pending, merged)) => match pending.take() {
                None => {
                    *pending = Some((v, mark.line()));
                    Ok(())
                }
                Some((key, line)) if key.is_mapping() || key.is_sequence() => Err(YamlError {
                    line,
                    message: "a mapping key must be a scalar, not a collection".into(),
                }),
                Some((key, line)) => insert(map, merged, key, v, line, self.last_key_wins),
            },
        }
    }
}

/// The number of nodes in `v` (each scalar, sequence and mapping counts one; keys too).
fn node_count(v: &Value) -> usize {
    let mut n = 0usize;
    let mut todo = vec![v];
    while let Some(v) = todo.pop() {
        n += 1;
        match v {
            Value::Sequence(items) => todo.extend(items),
            Value::Mapping(m) => {
                n += m.len();
                todo.extend(m.values());
            }
            Value::Tagged(t) => todo.push(&t.value),
            _ => {}
        }
    }
    n
}

fn insert(
    map: &mut Mapping,
    merged: &mut Vec<Value>,
    key: Value,
    v: Value,
    line: usize,
    last_key_wins: bool,
) -> Result<(), YamlError> {
    if key.as_str() == Some("<<") {
        // Merge keys: the merged mappings supply keys the mapping does not set itself.
        let sources = match v {
            Value::Mapping(m) => vec![m],
            Value::Sequence(items) => items
                .into_iter()
                .filter_map(|i| match i {
                    Value::Mapping(m) => Some(m),
                    _ => None,
                })
                .collect(),
            _ => {
                return Err(YamlError {
                    line,
                    message: "`<<` must merge a mapping or a list of mappings".into(),
                });
            }
        };
        for source in sources {
            for (k, val) in source {
                if !map.contains_key(&k) {
                    merged.push(k.clone());
                    map.insert(k, val);
                }
            }
        }
        return Ok(());
    }
    if map.contains_key(&key) {
        if let Some(pos) = merged.iter().position(|k| *k == key) {
            merged.swap_remove(pos);
        } else if !last_key_wins {
            return Err(YamlError {
                line,
                message: format!("mapping key {} already defined", scalar_display(&key)),
            });
        }
    }
    map.insert(key, v);
    Ok(())
}

fn scalar_display(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => serde_yaml::to_string(other)
            .map(|s| format!("`{}`", s.trim_end()))
            .unwrap_or_default(),
    }
}

/// The value of a scalar: quoted and block scalars are strings; plain ones are resolved
/// like go-yaml v3 resolves them into `interface{}`; explicit `!!` tags win.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag
        && tag.handle == "tag:yaml.org,2002:"
    {
        return match tag.suffix.as_str() {
            "str" | "binary" | "timestamp" => Value::String(text),
            "null" => Value::Null,
            "bool" => resolve_plain(&text)
                .filter(Value::is_bool)
                .unwrap_or(Value::String(text)),
            "int" | "float" => resolve_plain(&text)
                .filter(Value::is_number)
                .unwrap_or(Value::String(text)),
            _ => resolve_plain(&text).unwrap_or(Value::String(text)),
        };
    }
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    resolve_plain(&text).unwrap_or(Value::String(text))
}

/// go-yaml v3's resolution of a plain scalar; `None` means "a string".
pub fn resolve_plain(s: &str) -> Option<Value> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(Value::Number(Number::from(f64::INFINITY)));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(Value::Number(Number::from(f64::NEG_INFINITY))),
        ".nan" | ".NaN" | ".NAN" => return Some(Value::Number(Number::from(f64::NAN))),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    if let Some(t) = go_timestamp(s) {
        return Some(Value::String(t));
    }
    let plain = s.replace('_', "");
    if let Some(i) = parse_go_int(&plain) {
        return Some(Value::Number(i));
    }
    // Out of range (1e400) is no float for Go's ParseFloat: the text stays a string.
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
        && f.is_finite()
    {
        return Some(Value::Number(float_number(f)));
    }
    None
}

/// A plain scalar go-yaml v3 reads as a timestamp, as kustomize's JSON round trip then
/// writes it (`time.Time` in RFC 3339 with nanoseconds, trailing zeros dropped, `Z` for
/// UTC): `2001-12-14` is `2001-12-14T00:00:00Z`. go-yaml's layouts are
/// `2006-1-2T15:4:5.999999999Z07:00` (also with `t`), `2006-1-2 15:4:5.999999999` and
/// `2006-1-2`.
fn go_timestamp(s: &str) -> Option<String> {
    fn num(s: &str, min: usize, max: usize) -> Option<u32> {
        (s.len() >= min && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    }
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let (date, rest, zoned) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..]), b[i] != b' '),
        None => (s, None, false),
    };
    let mut parts = date.splitn(3, '-');
    let year = num(parts.next()?, 4, 4)?;
    let month = num(parts.next()?, 1, 2)?;
    let day = num(parts.next()?, 1, 2)?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days {
        return None;
    }
    let (mut h, mut m, mut sec, mut frac, mut zone) = (0, 0, 0, String::new(), "Z".to_owned());
    if let Some(rest) = rest {
        let (clock, tz) = if zoned {
            if let Some(c) = rest.strip_suffix(['Z']) {
                (c, "Z".to_owned())
            } else {
                let i = rest.rfind(['+', '-'])?;
                let (c, tz) = rest.split_at(i);
                let (th, tm) = tz[1..].split_once(':')?;
                let (th, tm) = (num(th, 2, 2)?, num(tm, 2, 2)?);
                if th > 23 || tm > 59 {
                    return None;
                }
                let z = if th == 0 && tm == 0 {
                    "Z".to_owned()
                } else {
                    tz.to_owned()
                };
                (c, z)
            }
        } else {
            (rest, "Z".to_owned())
        };
        let (hms, f) = match clock.split_once('.') {
            Some((hms, f)) => (hms, Some(num(f, 1, 9).map(|_| f)?)),
            None => (clock, None),
        };
        let mut t = hms.splitn(3, ':');
        h = num(t.next()?, 1, 2)?;
        m = num(t.next()?, 1, 2)?;
        sec = num(t.next()?, 1, 2)?;
        if h > 23 || m > 59 || sec > 59 {
            return None;
        }
        frac = f
            .map(|f| f.trim_end_matches('0'))
            .unwrap_or_default()
            .to_owned();
        zone = tz;
    }
    let frac = if frac.is_empty() {
        frac
    } else {
        format!(".{frac}")
    };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}{frac}{zone}"
    ))
}

/// Go's `strconv.ParseInt(s, 0, 64)` (then ParseUint): sign, `0x`/`0o`/`0b` prefixes and
/// the leading-zero octal form.
fn parse_go_int(s: &str) -> Option<Number> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, body) = if let Some(r) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, r)
    } else if let Some(r) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, r)
    } else if let Some(r) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, r)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude)
            .map(|m| -m)
            .ok()
            .or((magnitude == 1u64 << 63).then_some(i64::MIN))?;
        Some(Number::from(v))
    } else if let Ok(v) = i64::try_from(magnitude) {
        Some(Number::from(v))
    } else {
        Some(Number::from(magnitude))
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A float as kustomize's JSON round trip leaves it: whole numbers become integers.
fn float_number(f: f64) -> Number {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        Number::from(f as i64)
    } else {
        Number::from(f)
    }
}

// ---- emitting --------------------------------------------------------------------------

/// Serialises one document the way kustomize prints it.
pub fn to_string(doc: &Value) -> String {
    let mut out = String::new();
    match doc {
        Value::Mapping(m) if !m.is_empty() => emit_map(&mut out, m, 0),
        Value::Sequence(s) if !s.is_empty() => emit_seq(&mut out, s, 0),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn sorted(m: &Mapping) -> Vec<(&Value, &Value)> {
    let mut entries: Vec<_> = m.iter().collect();
    sort_tolerant(&mut entries, |(a, _), (b, _)| {
        go_yaml_key_order(&key_text(a), &key_text(b))
    });
    entries
}

/// Sorts stably by `cmp`, as `sort_by` does when `cmp` is a total order, but never panics
/// when it is not. go-yaml's key order is not one, nor is kustomize's legacy object order
/// (`kustomize::sort`) (runs of digits past 19 wrap around, as
/// Go's int64 does, so `0` < `1` < `10000000000000000000` < `0`), and Rust's sort may
/// panic on an order it finds inconsistent. Then the result is some permutation, the
/// same for the same input.
pub(crate) fn sort_tolerant<T>(v: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> std::cmp::Ordering) {
    /// Below this, insertion sort (also the fast path for what is already in order).
    const SMALL: usize = 16;
    fn merge_sort<T>(
        mut items: Vec<T>,
        cmp: &mut impl FnMut(&T, &T) -> std::cmp::Ordering,
    ) -> Vec<T> {
        if items.len() <= SMALL {
            insertion_sort(&mut items, cmp);
            return items;
        }
        let right = merge_sort(items.split_off(items.len() / 2), cmp);
        let left = merge_sort(items, cmp);
        let mut out = Vec::with_capacity(left.len() + right.len());
        let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
        while let (Some(a), Some(b)) = (left.peek(), right.peek()) {
            // Stable: the left one first unless the right one is strictly less.
            let next = if cmp(b, a) == std::cmp::Ordering::Less {
                right.next()
            } else {
                left.next()
            };
            out.extend(next);
        }
        out.extend(left);
        out.extend(right);
        out
    }
    fn insertion_sort<T>(v: &mut [T], cmp: &mut impl FnMut(&T, &T) -> std::cmp::Ordering) {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && cmp(&v[j], &v[j - 1]) == std::cmp::Ordering::Less {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    if v.len() <= SMALL {
        insertion_sort(v, &mut cmp);
    } else {
        *v = merge_sort(std::mem::take(v), &mut cmp);
    }
}

/// The order go-yaml v2 writes mapping keys in (its `keyList.Less`), which kustomize's
/// output follows: a "natural" order where, at the first difference, letters sort after
/// other characters, two letters by code point, and runs of digits by their value
/// (`x9` before `x10`, `A_B` before `AB`).
pub fn go_yaml_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    // Keys are nearly always ASCII: compare bytes then, without allocating.
    if a.is_ascii() && b.is_ascii() {
        natural_order(a.as_bytes(), b.as_bytes())
    } else {
        let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        natural_order(&ar, &br)
    }
}

fn natural_order<T: Copy + Into<char>>(ar: &[T], br: &[T]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let at = |s: &[T], i: usize| -> char { s[i].into() };
    for i in 0..ar.len().min(br.len()) {
        let (a, b) = (at(ar, i), at(br, i));
        if a == b {
            continue;
        }
        let (al, bl) = (a.is_alphabetic(), b.is_alphabetic());
        if al && bl {
            return a.cmp(&b);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if (a == '0' || b == '0')
            && (0..i)
                .rev()
                .map(|j| at(ar, j))
                .take_while(char::is_ascii_digit)
                .any(|c| c != '0')
        {
            // Inside a number with a nonzero digit before: leading zeros count.
            an = 1;
            bn = 1;
        }
        let number = |s: &[T], mut n: i64| {
            let mut j = i;
            while j < s.len() && at(s, j).is_ascii_digit() {
                n = n
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(at(s, j) as u8 - b'0'));
                j += 1;
            }
            (n, j)
        };
        let ((an, ai), (bn, bi)) = (number(ar, an), number(br, bn));
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return a.cmp(&b);
    }
    ar.len().cmp(&br.len())
}

fn key_text(k: &Value) -> std::borrow::Cow<'_, str> {
    match k {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(inline(other)),
    }
}

fn emit_map(out: &mut String, m: &Mapping, level: usize) {
    for (k, v) in sorted(m) {
        indent(out, level);
        push_key(out, k);
        out.push(':');
        emit_child(out, v, level, true);
    }
}

fn emit_seq(out: &mut String, items: &[Value], level: usize) {
    emit_seq_from(out, items, level, false);
}

/// A block sequence; `inline_first` puts the first item on the current line (go-yaml
/// writes a sequence nested in a sequence compactly: `- - a`).
fn emit_seq_from(out: &mut String, items: &[Value], level: usize, inline_first: bool) {
    for (n, item) in items.iter().enumerate() {
        if n > 0 || !inline_first {
            indent(out, level);
        }
        out.push('-');
        match item {
            Value::Mapping(m) if !m.is_empty() => {
                // The first key goes on the dash's line, the rest aligned under it.
                let mut first = true;
                for (k, v) in sorted(m) {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        indent(out, level + 2);
                    }
                    push_key(out, k);
                    out.push(':');
                    emit_child(out, v, level + 2, true);
                }
            }
            Value::Sequence(s) if !s.is_empty() => {
                out.push(' ');
                emit_seq_from(out, s, level + 2, true);
            }
            other => emit_child(out, other, level, false),
        }
    }
}

/// Writes what follows `key:` or `-`: a nested block on the next lines, or ` scalar\n`.
fn emit_child(out: &mut String, v: &Value, level: usize, in_map: bool) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(out, m, level + 2);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            // kustomize (go-yaml) does not indent a sequence under its mapping key.
            emit_seq(out, s, if in_map { level } else { level + 2 });
        }
        Value::String(s) => {
            let column = out
                .rsplit('\n')
                .next()
                .map_or(0, |line| line.chars().count());
            let at = super::scalar::At {
                column,
                indent: level + 2,
            };
            super::scalar::write_value(out, s, at, resolves_as_other(s));
        }
        Value::Tagged(t) => emit_child(out, &t.value, level, in_map),
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

/// Appends a mapping key (no intermediate string: this runs for every key written).
fn push_key(out: &mut String, k: &Value) {
    match k {
        Value::String(s) => super::scalar::write_key(out, s, resolves_as_other(s)),
        other => out.push_str(&inline(other)),
    }
}

/// A scalar (or empty collection) on one line.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(n),
        Value::String(s) => {
            let mut out = String::new();
            super::scalar::write_key(&mut out, s, resolves_as_other(s));
            out
        }
        Value::Sequence(s) if s.is_empty() => "[]".into(),
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        Value::Tagged(t) => inline(&t.value),
        // Non-empty collections never reach here (handled as blocks); keep a JSON form.
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn number_text(n: &Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        if f.is_nan() {
            return ".nan".into();
        }
        if f.is_infinite() {
            return if f > 0.0 {
                ".inf".into()
            } else {
                "-.inf".into()
            };
        }
        return go_float(f);
    }
    n.to_string()
}

/// A float as go-yaml v2 writes it: Go's `strconv.FormatFloat(f, 'g', -1, 64)`, the
/// shortest digits, in exponent form (`1.2345675e+06`, `1e-05`) below 1e-4 and from 1e6.
fn go_float(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Strings a YAML 1.1 reader takes for booleans.
fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// YAML 1.1 sexagesimal numbers such as `1:20`.
fn is_base60(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    body.contains(':')
        && body.split(':').enumerate().all(|(i, p)| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || (c == '.' && i > 0))
        })
}

/// Whether a plain `s` would read back as something other than this string (go-yaml
/// v2's check before it writes a string unquoted): null, a number, a YAML 1.1 boolean or
/// sexagesimal number, a timestamp, a merge key.
fn resolves_as_other(s: &str) -> bool {
    s.is_empty() || s == "<<" || resolve_plain(s).is_some() || is_old_bool(s) || is_base60(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        parse_stream(text).expect("parses").remove(0)
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v3() {
        let v = one(
            "a: 0644\nb: 0x10\nc: 1_000\nd: yes\ne: on\nf: 1e3\ng: 012345678\nh: ~\ni: True\nj: '0644'\nk: \"1\"\nl: 1.5\nm: -7\nn: 0o17\n",
        );
        let n = |k: &str| v[k].clone();
        assert_eq!(n("a"), Value::Number(420.into()));
        assert_eq!(n("b"), Value::Number(16.into()));
        assert_eq!(n("c"), Value::Number(1000.into()));
        assert_eq!(n("d"), Value::String("yes".into()));
        assert_eq!(n("e"), Value::String("on".into()));
        assert_eq!(n("f"), Value::Number(1000.into()));
        assert_eq!(n("g"), Value::Number(12345678.into()));
        assert_eq!(n("h"), Value::Null);
        assert_eq!(n("i"), Value::Bool(true));
        assert_eq!(n("j"), Value::String("0644".into()));
        assert_eq!(n("k"), Value::String("1".into()));
        assert_eq!(n("l"), Value::Number(Number::from(1.5)));
        assert_eq!(n("m"), Value::Number((-7).into()));
        assert_eq!(n("n"), Value::Number(15.into()));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = one("base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n");
        assert_eq!(v["use"]["x"], Value::Number(1.into()));
        assert_eq!(v["merged"]["x"], Value::Number(1.into()));
        assert_eq!(v["merged"]["y"], Value::Number(3.into()));
    }

    #[test]
    fn duplicate_keys_are_errors_with_the_line() {
        let e = parse_stream("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("`a`"), "{}", e.message);
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let e = parse_stream("a: 1\nb: [1, 2\nc: 3\n").expect_err("bad");
        assert!(e.line >= 2, "{e:?}");
    }

    #[test]
    fn multi_document_streams_drop_empty_documents() {
        assert_eq!(
            parse_stream("---\na: 1\n---\n---\nb: 2\n")
                .expect("ok")
                .len(),
            2
        );
    }

    #[test]
    fn emits_like_kustomize() {
        let v = one(
            "kind: ConfigMap\napiVersion: v1\nmetadata: {name: x, annotations: {a: 'on', b: '0644', c: '{{ x }}', d: '', e: 'a: b'}}\ndata:\n  script: |\n    echo hi\n    exit 0\n  list: []\nspec:\n  ports:\n  - port: 80\n    name: http\n",
        );
        let text = to_string(&v);
        let expected = "apiVersion: v1\ndata:\n  list: []\n  script: |\n    echo hi\n    exit 0\nkind: ConfigMap\nmetadata:\n  annotations:\n    a: \"on\"\n    b: \"0644\"\n    c: '{{ x }}'\n    d: \"\"\n    e: 'a: b'\n  name: x\nspec:\n  ports:\n  - name: http\n    port: 80\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn emitted_text_parses_back_to_the_same_value() {
        let src = "a: [1, 'two', {b: [x, '', 'yes', \"tab\\there\", \"nl\\n\", \"end\\n\\n\", 'no-nl\\nx']}]\nc: {}\nd: -1.5\ne: '- x'\nf: \"#x\"\ng: [[1, 2], [3]]\n";
        let v = one(src);
        let back = one(&to_string(&v));
        assert_eq!(v, back, "{}", to_string(&v));
    }

    #[test]
    fn alias_bombs_are_refused_quickly_with_the_line() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        // The node budget is what bounds time and memory here (10^12 nodes otherwise).
        let e = parse_stream(&bomb).expect_err("bomb");
        assert!(e.message.contains("excessive aliasing"), "{e:?}");
        assert!(e.line > 1, "{e:?}");
    }

    #[test]
    fn modest_aliasing_still_parses() {
        let v = one("x: &x {a: [1, 2, 3]}\ny: *x\nz: *x\n");
        assert_eq!(v["z"]["a"][2], Value::Number(3.into()));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        // The scanner's own limit (flow collections) or ours: either is a clean error.
        let e = parse_stream(&deep).expect_err("deep");
        assert!(
            e.message.contains("limit") || e.message.contains("nest more than"),
            "{e:?}"
        );
        let deep_maps = (0..5000).fold(String::new(), |mut s, i| {
            s.push_str(&" ".repeat(i));
            s.push_str("k:\n");
            s
        });
        let e = parse_stream(&deep_maps).expect_err("deep block mappings");
        assert!(e.message.contains("nest more than 512"), "{e:?}");
    }

    #[test]
    fn nul_and_control_characters_are_errors_with_line_and_offset() {
        let e = parse_stream("kind: Deployment\nspec:\0\n  containers: []\n").expect_err("nul");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("U+0000"), "{e:?}");
        assert!(e.message.contains("byte offset 22"), "{e:?}");
        assert!(parse_stream("a: \u{1b}[31m\n").is_err());
        assert!(parse_stream("a: \u{7f}\n").is_err());
        // Tabs, CR/LF, NEL and non-ASCII text are fine.
        assert!(parse_stream("a: \"x\ty\"\r\nb: é\u{85}\n").is_ok());
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let v = one("\u{feff}resources:\n- a.yaml\n");
        assert_eq!(v["resources"][0], Value::String("a.yaml".into()));
    }

    #[test]
    fn complex_mapping_keys_are_errors() {
        let e = parse_stream("labels:\n  ? {a: b}\n  : c\n").expect_err("complex key");
        assert!(e.message.contains("mapping key must be a scalar"), "{e:?}");
        assert!(parse_stream("labels:\n  ? [a]\n  : c\n").is_err());
    }

    #[test]
    fn oversized_files_are_refused_before_parsing() {
        let big = "#".repeat(MAX_YAML_BYTES + 1);
        let e = parse_stream(&big).expect_err("big");
        assert!(e.message.contains("at most"), "{e:?}");
    }

    #[test]
    fn timestamps_resolve_like_go_yaml_then_json() {
        let v = one(
            "a: 2001-12-14\nb: 2001-12-14T21:59:43.10-05:00\nc: 2001-1-2 3:4:5\nd: 2001-12-14t21:59:43.000Z\ne: 2001-02-30\nf: '2001-12-14'\ng: 2001-12-14T01:02:03+00:00\n",
        );
        assert_eq!(v["a"], Value::from("2001-12-14T00:00:00Z"));
        assert_eq!(v["b"], Value::from("2001-12-14T21:59:43.1-05:00"));
        assert_eq!(v["c"], Value::from("2001-01-02T03:04:05Z"));
        assert_eq!(v["d"], Value::from("2001-12-14T21:59:43Z"));
        assert_eq!(v["e"], Value::from("2001-02-30"));
        assert_eq!(v["f"], Value::from("2001-12-14"));
        assert_eq!(v["g"], Value::from("2001-12-14T01:02:03Z"));
        // Both forms are quoted on output, as go-yaml quotes what it would read as a time.
        assert_eq!(to_string(&v["f"]), "\"2001-12-14\"\n");
    }

    #[test]
    fn top_level_annotations_keep_the_text_of_their_values() {
        let v = one(
            "metadata:\n  annotations:\n    a: 0x10\n    b: null\n    c: 1.50\n    d: \"q\"\n  labels:\n    l: 0x10\nspec:\n  metadata:\n    annotations:\n      x: 0x10\n",
        );
        assert_eq!(v["metadata"]["annotations"]["a"], Value::from("0x10"));
        assert_eq!(v["metadata"]["annotations"]["b"], Value::from("null"));
        assert_eq!(v["metadata"]["annotations"]["c"], Value::from("1.50"));
        assert_eq!(v["metadata"]["annotations"]["d"], Value::from("q"));
        assert_eq!(v["metadata"]["labels"]["l"], Value::Number(16.into()));
        assert_eq!(
            v["spec"]["metadata"]["annotations"]["x"],
            Value::Number(16.into())
        );
    }

    #[test]
    fn floats_are_written_like_go() {
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1234567.5), "1.2345675e+06");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(-2.5e-7), "-2.5e-07");
        assert_eq!(go_float(123456.25), "123456.25");
    }

    #[test]
    fn keys_in_no_consistent_order_are_written_without_panicking() {
        // `0` < `1` (by value), `1` < `1000…` (a prefix), and `1000…` (20 digits, which
        // wraps around as in Go) < `0`: a cycle, which Rust's own sort may panic on.
        let big = "10000000000000000000";
        assert_eq!(go_yaml_key_order("0", "1"), std::cmp::Ordering::Less);
        assert_eq!(go_yaml_key_order("1", big), std::cmp::Ordering::Less);
        assert_eq!(go_yaml_key_order(big, "0"), std::cmp::Ordering::Less);
        for n in [3, 40] {
            let mut map = Mapping::new();
            for i in 0..n {
                for key in ["0", "1", big] {
                    map.insert(
                        Value::String(format!("{key}{}", "9".repeat(i))),
                        Value::Null,
                    );
                }
            }
            let text = to_string(&Value::Mapping(map.clone()));
            let again = parse_stream(&text).expect("written YAML parses");
            assert_eq!(again, [Value::Mapping(map)]);
        }
        // A total order sorts as the standard sort does, stably.
        let mut pairs: Vec<(u32, usize)> =
            (0..100).map(|i| ((i * 7919) % 13, i as usize)).collect();
        let mut expected = pairs.clone();
        expected.sort_by_key(|p| p.0);
        sort_tolerant(&mut pairs, |a, b| a.0.cmp(&b.0));
        assert_eq!(pairs, expected);
    }

    #[test]
    fn keys_are_written_in_go_yaml_natural_order() {
        let mut keys = vec![
            "x10", "AB", "x9", "A_B", "a", "B", "x09", "1", "_z", "a-b", "ab",
        ];
        keys.sort_by(|a, b| go_yaml_key_order(a, b));
        assert_eq!(
            keys,
            [
                "_z", "1", "A_B", "AB", "B", "a", "a-b", "ab", "x9", "x09", "x10"
            ]
        );
    }

    #[test]
    fn a_block_scalar_that_ends_the_file_without_a_newline_has_none() {
        assert_eq!(one("a: |\n  x\n  y")["a"], Value::from("x\ny"));
        assert_eq!(one("a: |\n  x\n  y\n")["a"], Value::from("x\ny\n"));
        assert_eq!(one("a: |\n  x\nb: 1")["a"], Value::from("x\n"));
        assert_eq!(one("a: |\n  x\n# done")["a"], Value::from("x\n"));
        assert_eq!(one("a: >\n  x\n  y")["a"], Value::from("x y"));
    }

    /// Found by the yaml_parse fuzz target: a tagged empty annotation value read back
    /// differently from how it was written.
    #[test]
    fn annotation_values_round_trip_whatever_their_tag() {
        let v = one("metadata:\n  annotations:\n    a: !0.0\n    b: !!int 5\n    c:\n");
        assert_eq!(v["metadata"]["annotations"]["a"], Value::from(""));
        assert_eq!(v["metadata"]["annotations"]["b"], Value::from("5"));
        assert_eq!(v["metadata"]["annotations"]["c"], Value::from(""));
        assert_eq!(one(&to_string(&v)), v);
    }

    #[test]
    fn null_marks_tell_written_nulls_from_empty_values() {
        let text = "kind: A\nmetadata:\n  creationTimestamp: null\n  annotations:\n    gone: null\n    kept: x\nspec:\n  a:\n  b: ~\n  list:\n  - c:\n    d: null\n---\nkind: B\nx:\n";
        let docs = parse_stream_marked(text, Dialect::Objects).expect("parses");
        assert_eq!(docs.len(), 2);
        let m = &docs[0].1;
        assert_eq!(
            m.written,
            ["metadata/creationTimestamp", "spec/b", "spec/list/[]/d"]
        );
        assert_eq!(m.empty, ["spec/a", "spec/list/[]/c"]);
        assert_eq!(m.annotation_nulls, ["gone"]);
        // Annotation values are still read as their text.
        assert_eq!(
            docs[0].0["metadata"]["annotations"]["gone"],
            Value::from("null")
        );
        assert_eq!(docs[1].1.empty, ["x"]);
    }
}
