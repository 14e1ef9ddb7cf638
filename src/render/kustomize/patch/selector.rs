//! Patch targets (kustomize api/types/selector.go) and Kubernetes label selectors
//! (apimachinery pkg/labels: the same grammar, validation and matching).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regex::Regex;
use serde_yaml::Value;

use super::PatchError;

/// A kustomize patch target: anchored regexes on group, version, kind, name and
/// namespace, plus label and annotation selectors. Empty parts match everything.
#[derive(Debug, Clone)]
pub struct Selector {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    label_selector: Option<LabelSelector>,
    annotation_selector: Option<LabelSelector>,
    /// The compiled forms of the five patterns above, in that order.
    regexes: [Option<Regex>; 5],
}

const FIELDS: [&str; 5] = ["group", "version", "kind", "name", "namespace"];

/// kustomize's placeholder namespace for cluster-scoped objects.
const NOT_A_NAMESPACE: &str = "_non_namespaceable_";

/// Kinds kustomize knows to be cluster-scoped (kyaml openapi's precomputed table).
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("policy", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("", "ComponentStatus"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "NodeProxyOptions"),
    ("", "PersistentVolume"),
];

/// The versions of each cluster-scoped group kyaml's table lists.
fn is_cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    let known_version = match group {
        "" => version == "v1",
        "policy" => version == "v1beta1",
        "flowcontrol.apiserver.k8s.io" => version == "v1beta1",
        "storage.k8s.io"
        | "rbac.authorization.k8s.io"
        | "scheduling.k8s.io"
        | "networking.k8s.io"
        | "node.k8s.io"
        | "certificates.k8s.io"
        | "apiregistration.k8s.io"
        | "apiextensions.k8s.io"
        | "admissionregistration.k8s.io" => version == "v1" || version == "v1beta1",
        _ => false,
    };
    known_version && CLUSTER_SCOPED.contains(&(group, kind))
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for p in path {
        match cur.get(*p) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Mapping(m)) = v {
        for (k, v) in m {
            if let Some(k) = k.as_str() {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => super::smp::scalar_text(other),
                };
                out.insert(k.to_owned(), v);
            }
        }
    }
    out
}

impl Selector {
    /// Reads a `target:` map (`group`, `version`, `kind`, `name`, `namespace`,
    /// `labelSelector`, `annotationSelector`).
    pub fn from_yaml(doc: &Value) -> Result<Selector, PatchError> {
        let map = match doc {
            Value::Mapping(m) => m,
            Value::Null => &serde_yaml::Mapping::new(),
            _ => {
                return Err(PatchError::InvalidSelector {
                    field: "target".to_owned(),
                    message: "expected a map".to_owned(),
                });
            }
        };
        let text = |field: &str| -> Result<Option<String>, PatchError> {
            match map.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                // kustomize decodes targets strictly: `name: 5` is not a string.
                Some(_) => Err(PatchError::InvalidSelector {
                    field: field.to_owned(),
                    message: "expected a string".to_owned(),
                }),
            }
        };
        for key in map.keys() {
            let known = key.as_str().is_some_and(|k| {
                FIELDS.contains(&k) || k == "labelSelector" || k == "annotationSelector"
            });
            if !known {
                return Err(PatchError::InvalidSelector {
                    field: super::smp::scalar_text(key),
                    message: "unknown field".to_owned(),
                });
            }
        }
        let parts = [
            text("group")?,
            text("version")?,
            text("kind")?,
            text("name")?,
            text("namespace")?,
        ];
        let mut regexes: [Option<Regex>; 5] = Default::default();
        for (i, part) in parts.iter().enumerate() {
            if let Some(p) = part {
                let re =
                    Regex::new(&format!("^(?:{p})$")).map_err(|e| PatchError::InvalidSelector {
                        field: FIELDS[i].to_owned(),
                        message: e.to_string(),
                    })?;
                regexes[i] = Some(re);
            }
        }
        let labels = text("labelSelector")?
            .map(|s| LabelSelector::parse(&s))
            .transpose()?;
        let annotations = text("annotationSelector")?
            .map(|s| LabelSelector::parse(&s))
            .transpose()?;
        let [group, version, kind, name, namespace] = parts;
        Ok(Selector {
            group,
            version,
            kind,
            name,
            namespace,
            label_selector: labels,
            annotation_selector: annotations,
            regexes,
        })
    }

    /// The patterns as written (`None` when absent or empty): group, version, kind, name,
    /// namespace.
    pub fn patterns(&self) -> [Option<&str>; 5] {
        [
            self.group.as_deref(),
            self.version.as_deref(),
            self.kind.as_deref(),
            self.name.as_deref(),
            self.namespace.as_deref(),
        ]
    }

    pub fn label_selector(&self) -> Option<&LabelSelector> {
        self.label_selector.as_ref()
    }

    pub fn annotation_selector(&self) -> Option<&LabelSelector> {
        self.annotation_selector.as_ref()
    }

    /// Whether the object is a target. The namespace is compared as kustomize does:
    /// an empty namespace is `default`, cluster-scoped kinds have none.
    pub fn matches(&self, obj: &Value) -> bool {
        let name = str_at(obj, &["metadata", "name"]);
        let namespace = str_at(obj, &["metadata", "namespace"]);
        self.matches_ids(obj, &[name], &[namespace])
    }

    /// kustomize's `ResMap.Select`: like [`Selector::matches`], but the name may match any
    /// of `names` and the namespace any of `namespaces` (a resource's current and original
    /// ones; "" is no namespace). Kind, group, version, labels and annotations are the
    /// object's own.
    pub fn matches_ids(&self, obj: &Value, names: &[&str], namespaces: &[&str]) -> bool {
        let api_version = str_at(obj, &["apiVersion"]);
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let kind = str_at(obj, &["kind"]);
        let cluster_scoped = is_cluster_scoped(group, version, kind);
        let effective = |ns: &str| -> String {
            if cluster_scoped {
                NOT_A_NAMESPACE.to_owned()
            } else if ns.is_empty() {
                "default".to_owned()
            } else {
                ns.to_owned()
            }
        };
        let [g, v, k, n, ns] = &self.regexes;
        let fixed = [(g, group), (v, version), (k, kind)];
        if fixed
            .iter()
            .any(|(re, value)| re.as_ref().is_some_and(|re| !re.is_match(value)))
        {
            return false;
        }
        if let Some(re) = n
            && !names.iter().any(|name| re.is_match(name))
        {
            return false;
        }
        if let Some(re) = ns
            && !namespaces.iter().any(|x| re.is_match(&effective(x)))
        {
            return false;
        }
        let meta = obj.get("metadata");
        if let Some(sel) = &self.label_selector
            && !sel.matches(&string_map(meta.and_then(|m| m.get("labels"))))
        {
            return false;
        }
        if let Some(sel) = &self.annotation_selector
            && !sel.matches(&string_map(meta.and_then(|m| m.get("annotations"))))
        {
            return false;
        }
        true
    }
}

impl fmt::Display for Selector {
    /// The `target:` map this selector was read from, as one-line YAML flow.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let fields = [
            &self.group,
            &self.version,
            &self.kind,
            &self.name,
            &self.namespace,
        ];
        for (name, v) in FIELDS.iter().zip(fields) {
            if let Some(v) = v {
                parts.push(format!("{name}: {v:?}"));
            }
        }
        if let Some(l) = &self.label_selector {
            parts.push(format!("labelSelector: {:?}", l.to_string()));
        }
        if let Some(a) = &self.annotation_selector {
            parts.push(format!("annotationSelector: {:?}", a.to_string()));
        }
        write!(f, "{{{}}}", parts.join(", "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: BTreeSet<String>,
}

/// A parsed Kubernetes label selector (`a=b,c!=d,e in (f,g),!h,i`). Displays in the
/// canonical form apimachinery prints (requirements sorted by key, values sorted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    End,
    Ident(String),
    In,
    NotIn,
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::End => String::new(),
            Tok::Ident(s) => s.clone(),
            Tok::In => "in".into(),
            Tok::NotIn => "notin".into(),
            Tok::Not => "!".into(),
            Tok::Eq => "=".into(),
            Tok::DoubleEq => "==".into(),
            Tok::NotEq => "!=".into(),
            Tok::Gt => ">".into(),
            Tok::Lt => "<".into(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Comma => ",".into(),
        }
    }

    /// In a value position `in` and `notin` are plain words.
    fn as_value(&self) -> Tok {
        match self {
            Tok::In | Tok::NotIn => Tok::Ident(self.text()),
            other => other.clone(),
        }
    }
}

fn special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn symbol(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::Close,
        "," => Tok::Comma,
        "!" => Tok::Not,
        "==" => Tok::DoubleEq,
        "=" => Tok::Eq,
        ">" => Tok::Gt,
        "<" => Tok::Lt,
        "!=" => Tok::NotEq,
        "(" => Tok::Open,
        _ => return None,
    })
}

/// Why a label selector does not parse, in apimachinery's words; the `problem` of
/// [`PatchError::InvalidLabelSelector`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelSelectorProblem {
    #[error("error expected: keyword found '{0}'")]
    UnknownSymbols(String),
    #[error("invalid label key `{0}`")]
    InvalidKey(String),
    #[error("invalid label value `{0}`")]
    InvalidValue(String),
    #[error("for 'Gt', 'Lt' operators, the value must be an integer: `{0}`")]
    NotAnInteger(String),
    /// apimachinery words this one without the comma of [`Self::Unexpected`].
    #[error("found '{found}' expected: '('")]
    NoOpenParen { found: String },
    #[error("found '{found}', expected: {expected}")]
    Unexpected {
        found: String,
        expected: &'static str,
    },
}

fn lex(s: &str) -> Result<Vec<Tok>, LabelSelectorProblem> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\r' | '\n') {
            i += 1;
        }
        let Some(&c) = chars.get(i) else {
            out.push(Tok::End);
            return Ok(out);
        };
        if special(c) {
            // The longest run of symbols that is still an operator.
            let mut buf = String::new();
            let mut last: Option<(Tok, usize)> = None;
            while let Some(&c) = chars.get(i) {
                if !special(c) {
                    break;
                }
                buf.push(c);
                if let Some(t) = symbol(&buf) {
                    last = Some((t, i + 1));
                    i += 1;
                } else if last.is_some() {
                    break;
                } else {
                    i += 1;
                }
            }
            match last {
                Some((t, end)) => {
                    out.push(t);
                    i = end;
                }
                None => return Err(LabelSelectorProblem::UnknownSymbols(buf)),
            }
        } else {
            let mut buf = String::new();
            while let Some(&c) = chars.get(i) {
                if special(c) || matches!(c, ' ' | '\t' | '\r' | '\n') {
                    break;
                }
                buf.push(c);
                i += 1;
            }
            out.push(match buf.as_str() {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Ident(buf),
            });
        }
    }
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn validate_key(k: &str) -> Result<(), LabelSelectorProblem> {
    let ok = match k.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(k),
    };
    if ok {
        Ok(())
    } else {
        Err(LabelSelectorProblem::InvalidKey(k.to_owned()))
    }
}

fn validate_value(v: &str) -> Result<(), LabelSelectorProblem> {
    if v.is_empty() || is_label_name(v) {
        Ok(())
    } else {
        Err(LabelSelectorProblem::InvalidValue(v.to_owned()))
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Tok {
        self.toks.get(self.pos).map_or(Tok::End, Tok::as_value)
    }
    fn next_raw(&mut self) -> Tok {
        let t = self.toks.get(self.pos).cloned().unwrap_or(Tok::End);
        self.pos += 1;
        t
    }
    fn next(&mut self) -> Tok {
        self.next_raw().as_value()
    }

    fn requirement(&mut self) -> Result<Requirement, LabelSelectorProblem> {
        let mut t = self.next();
        let mut op = None;
        if t == Tok::Not {
            op = Some(Op::DoesNotExist);
            t = self.next();
        }
        let Tok::Ident(key) = t else {
            return Err(LabelSelectorProblem::Unexpected {
                found: t.text(),
                expected: "identifier",
            });
        };
        validate_key(&key)?;
        if matches!(self.peek(), Tok::End | Tok::Comma) {
            let op = op.unwrap_or(Op::Exists);
            return Ok(Requirement {
                key,
                op,
                values: BTreeSet::new(),
            });
        }
        if op.is_some() {
            let t = self.next_raw();
            return Err(LabelSelectorProblem::Unexpected {
                found: t.text(),
                expected: "in, notin, =, ==, !=, gt, lt",
            });
        }
        let op = match self.next_raw() {
            Tok::In => Op::In,
            Tok::NotIn => Op::NotIn,
            Tok::Eq => Op::Equals,
            Tok::DoubleEq => Op::DoubleEquals,
            Tok::NotEq => Op::NotEquals,
            Tok::Gt => Op::GreaterThan,
            Tok::Lt => Op::LessThan,
            t => {
                return Err(LabelSelectorProblem::Unexpected {
                    found: t.text(),
                    expected: "in, notin, =, ==, !=, gt, lt",
                });
            }
        };
        let values = match op {
            Op::In | Op::NotIn => self.set_values()?,
            _ => self.exact_value()?,
        };
        match op {
            Op::GreaterThan | Op::LessThan => {
                for v in &values {
                    v.parse::<i64>()
                        .map_err(|_| LabelSelectorProblem::NotAnInteger(v.clone()))?;
                }
            }
            _ => {
                for v in &values {
                    validate_value(v)?;
                }
            }
        }
        Ok(Requirement { key, op, values })
    }

    fn exact_value(&mut self) -> Result<BTreeSet<String>, LabelSelectorProblem> {
        let mut s = BTreeSet::new();
        match self.peek() {
            Tok::End | Tok::Comma => {
                s.insert(String::new());
            }
            _ => match self.next() {
                Tok::Ident(v) => {
                    s.insert(v);
                }
                t => {
                    return Err(LabelSelectorProblem::Unexpected {
                        found: t.text(),
                        expected: "identifier",
                    });
                }
            },
        }
        Ok(s)
    }

    fn set_values(&mut self) -> Result<BTreeSet<String>, LabelSelectorProblem> {
        let t = self.next();
        if t != Tok::Open {
            return Err(LabelSelectorProblem::NoOpenParen { found: t.text() });
        }
        let mut s = BTreeSet::new();
        match self.peek() {
            Tok::Close => {
                self.next();
                s.insert(String::new());
                return Ok(s);
            }
            Tok::Ident(_) | Tok::Comma => {}
            t => {
                return Err(LabelSelectorProblem::Unexpected {
                    found: t.text(),
                    expected: "',', ')' or identifier",
                });
            }
        }
        loop {
            match self.next() {
                Tok::Ident(v) => {
                    s.insert(v);
                    match self.peek() {
                        Tok::Comma => continue,
                        Tok::Close => break,
                        t => {
                            return Err(LabelSelectorProblem::Unexpected {
                                found: t.text(),
                                expected: "',' or ')'",
                            });
                        }
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.insert(String::new());
                    }
                    match self.peek() {
                        Tok::Close => {
                            s.insert(String::new());
                            break;
                        }
                        Tok::Comma => {
                            self.next();
                            s.insert(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(LabelSelectorProblem::Unexpected {
                        found: t.text(),
                        expected: "',', or identifier",
                    });
                }
            }
        }
        match self.next() {
            Tok::Close => Ok(s),
            t => Err(LabelSelectorProblem::Unexpected {
                found: t.text(),
                expected: "')'",
            }),
        }
    }
}

impl LabelSelector {
    /// Parses the apimachinery label selector syntax. The empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, PatchError> {
        let err = |problem: LabelSelectorProblem| PatchError::InvalidLabelSelector {
            selector: s.to_owned(),
            problem,
        };
        let mut p = Parser {
            toks: lex(s).map_err(err)?,
            pos: 0,
        };
        let mut requirements = Vec::new();
        loop {
            match p.peek() {
                Tok::Ident(_) | Tok::Not => {
                    requirements.push(p.requirement().map_err(err)?);
                    match p.next() {
                        Tok::End => break,
                        Tok::Comma => {
                            if !matches!(p.peek(), Tok::Ident(_) | Tok::Not) {
                                return Err(err(LabelSelectorProblem::Unexpected {
                                    found: p.peek().text(),
                                    expected: "identifier after ','",
                                }));
                            }
                        }
                        t => {
                            return Err(err(LabelSelectorProblem::Unexpected {
                                found: t.text(),
                                expected: "',' or 'end of string'",
                            }));
                        }
                    }
                }
                Tok::End => break,
                t => {
                    return Err(err(LabelSelectorProblem::Unexpected {
                        found: t.text(),
                        expected: "!, identifier, or 'end of string'",
                    }));
                }
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.op {
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
                Op::Equals | Op::DoubleEquals | Op::In => {
                    value.is_some_and(|v| r.values.contains(v))
                }
                Op::NotEquals | Op::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                Op::GreaterThan | Op::LessThan => {
                    let Some(Ok(have)) = value.map(|v| v.parse::<i64>()) else {
                        return false;
                    };
                    r.values.iter().all(|want| match want.parse::<i64>() {
                        Ok(w) if r.op == Op::GreaterThan => have > w,
                        Ok(w) => have < w,
                        Err(_) => false,
                    })
                }
            }
        })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.op == Op::DoesNotExist {
                f.write_str("!")?;
            }
            f.write_str(&r.key)?;
            let values: Vec<&str> = r.values.iter().map(String::as_str).collect();
            match r.op {
                Op::Exists | Op::DoesNotExist => {}
                Op::Equals => write!(f, "={}", values.join(""))?,
                Op::DoubleEquals => write!(f, "=={}", values.join(""))?,
                Op::NotEquals => write!(f, "!={}", values.join(""))?,
                Op::GreaterThan => write!(f, ">{}", values.join(""))?,
                Op::LessThan => write!(f, "<{}", values.join(""))?,
                Op::In => write!(f, " in ({})", values.join(","))?,
                Op::NotIn => write!(f, " notin ({})", values.join(","))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selector_syntax() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=api",
            "missing!=x",
            "app in (web, api)",
            "app notin (api)",
            "missing notin (x)",
            "app,tier",
            "!missing",
            "n>4,n<6",
            "app=web , tier in (front)",
            "example.com/missing notin (a)",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&l), "{s}");
        }
        let no = [
            "app=api",
            "app in (api)",
            "!app",
            "missing",
            "n>5",
            "tier notin (front)",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&l), "{s}");
        }
    }

    #[test]
    fn label_selector_errors_and_display() {
        for bad in [
            "app=",
            "=x",
            "a b",
            "app in web",
            "app in (a",
            "a,",
            "a=b=c",
            "-a",
            "n>x",
            "a=b c",
        ] {
            if bad == "app=" {
                // an empty value is allowed
                assert!(LabelSelector::parse(bad).is_ok());
                continue;
            }
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
        let s = LabelSelector::parse("z in (b,a), !y, x, w==1, v!=2").unwrap();
        assert_eq!(s.to_string(), "v!=2,w==1,x,!y,z in (a,b)");
    }

    fn obj(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn sel(s: &str) -> Selector {
        Selector::from_yaml(&obj(s)).unwrap()
    }

    #[test]
    fn target_regexes_are_anchored() {
        let d =
            obj("{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, labels: {a: b}}}");
        assert!(sel("{kind: Deployment}").matches(&d));
        assert!(!sel("{kind: Deploy}").matches(&d));
        assert!(sel("{kind: 'Deploy.*', name: 'w.b'}").matches(&d));
        assert!(sel("{group: apps, version: v1}").matches(&d));
        assert!(!sel("{group: batch}").matches(&d));
        assert!(sel("{namespace: default}").matches(&d));
        assert!(sel("{labelSelector: a=b}").matches(&d));
        assert!(!sel("{annotationSelector: a=b}").matches(&d));
        assert!(sel("{}").matches(&d));
    }

    #[test]
    fn original_names_and_namespaces_also_match() {
        let d =
            obj("{apiVersion: apps/v1, kind: Deployment, metadata: {name: p-web, namespace: x}}");
        let s = sel("{name: web, namespace: default}");
        assert!(!s.matches(&d));
        assert!(!s.matches_ids(&d, &["p-web", "web"], &["x"]));
        assert!(s.matches_ids(&d, &["p-web", "web"], &["x", ""]));
    }

    #[test]
    fn cluster_scoped_kinds_have_no_namespace() {
        let ns = obj("{apiVersion: v1, kind: Namespace, metadata: {name: prod}}");
        assert!(!sel("{namespace: default}").matches(&ns));
        assert!(sel("{namespace: _non_namespaceable_}").matches(&ns));
    }

    #[test]
    fn target_errors_name_the_field() {
        let e = Selector::from_yaml(&obj("{kind: '('}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kind"), "{e}");
        let e = Selector::from_yaml(&obj("{kinds: Deployment}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kinds"), "{e}");
        assert!(Selector::from_yaml(&obj("{labelSelector: 'a in'}")).is_err());
        let e = Selector::from_yaml(&obj("{name: 5}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("name") && e.contains("string"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        let s = sel("{group: apps, kind: Deployment, labelSelector: 'b, a=1'}");
        let again = sel(&s.to_string());
        assert_eq!(again.to_string(), s.to_string());
    }
}
