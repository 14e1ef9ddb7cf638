//! Just enough of Kubernetes' protobuf encoding to read the bodies kubectl's imperative
//! generators send (`kubectl create namespace|configmap|secret|serviceaccount`): the
//! `k8s\0` envelope (runtime.Unknown) and the few message types those commands use,
//! turned into the JSON the rest of the fake works with. Everything else is refused
//! (the caller answers 415).

use super::util;
use serde_json::{Map, Value, json};

/// How a field of a known message decodes.
#[derive(Clone, Copy)]
enum F {
    Str(&'static str),
    Bool(&'static str),
    Int(&'static str),
    StrList(&'static str),
    StrMap(&'static str),
    BytesMap(&'static str),
    Msg(&'static str, &'static str),
    MsgList(&'static str, &'static str),
}

fn schema(msg: &str) -> &'static [(u64, F)] {
    use F::*;
    match msg {
        "ObjectMeta" => &[
            (1, Str("name")),
            (2, Str("generateName")),
            (3, Str("namespace")),
            (5, Str("uid")),
            (6, Str("resourceVersion")),
            (7, Int("generation")),
            (11, StrMap("labels")),
            (12, StrMap("annotations")),
            (14, StrList("finalizers")),
        ],
        "ConfigMap" => &[
            (1, Msg("metadata", "ObjectMeta")),
            (2, StrMap("data")),
            (3, BytesMap("binaryData")),
            (4, Bool("immutable")),
        ],
        "Secret" => &[
            (1, Msg("metadata", "ObjectMeta")),
            (2, BytesMap("data")),
            (3, Str("type")),
            (4, StrMap("stringData")),
            (5, Bool("immutable")),
        ],
        "Namespace" => &[
            (1, Msg("metadata", "ObjectMeta")),
            (2, Msg("spec", "NamespaceSpec")),
        ],
        "NamespaceSpec" => &[(1, StrList("finalizers"))],
        "ServiceAccount" => &[
            (1, Msg("metadata", "ObjectMeta")),
            (3, MsgList("imagePullSecrets", "LocalObjectReference")),
            (4, Bool("automountServiceAccountToken")),
        ],
        "LocalObjectReference" => &[(1, Str("name"))],
        _ => &[],
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        let out = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }

    /// (field number, wire type, payload) of the next field; fixed-width payloads skipped.
    fn field(&mut self) -> Option<(u64, u64, Option<&'a [u8]>, u64)> {
        let tag = self.varint()?;
        let (num, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => Some((num, wire, None, self.varint()?)),
            2 => Some((num, wire, Some(self.bytes()?), 0)),
            1 => {
                self.pos += 8;
                Some((num, wire, None, 0))
            }
            5 => {
                self.pos += 4;
                Some((num, wire, None, 0))
            }
            _ => None,
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

fn map_entry(buf: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut r = Reader { buf, pos: 0 };
    let (mut k, mut v) = (String::new(), Vec::new());
    while !r.done() {
        match r.field()? {
            (1, 2, Some(b), _) => k = String::from_utf8(b.to_vec()).ok()?,
            (2, 2, Some(b), _) => v = b.to_vec(),
            _ => {}
        }
    }
    Some((k, v))
}

fn message(buf: &[u8], msg: &str) -> Option<Value> {
    let fields = schema(msg);
    let mut out = Map::new();
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (num, _, payload, int) = r.field()?;
        let Some((_, f)) = fields.iter().find(|(n, _)| *n == num) else {
            continue;
        };
        let text = || payload.and_then(|b| String::from_utf8(b.to_vec()).ok());
        match *f {
            F::Str(name) => {
                out.insert(name.into(), json!(text()?));
            }
            F::Bool(name) => {
                out.insert(name.into(), json!(int != 0));
            }
            F::Int(name) => {
                out.insert(name.into(), json!(int));
            }
            F::StrList(name) => {
                let list = out.entry(name).or_insert_with(|| json!([]));
                list.as_array_mut()?.push(json!(text()?));
            }
            F::StrMap(name) | F::BytesMap(name) => {
                let (k, v) = map_entry(payload?)?;
                let v = match f {
                    F::StrMap(_) => json!(String::from_utf8(v).ok()?),
                    _ => json!(util::base64_encode(&v)),
                };
                out.entry(name).or_insert_with(|| json!({}))[k] = v;
            }
            F::Msg(name, sub) => {
                out.insert(name.into(), message(payload?, sub)?);
            }
            F::MsgList(name, sub) => {
                let item = message(payload?, sub)?;
                let list = out.entry(name).or_insert_with(|| json!([]));
                list.as_array_mut()?.push(item);
            }
        }
    }
    Some(Value::Object(out))
}

/// The JSON form of a protobuf-encoded object, if it is one of the supported kinds.
pub fn decode(body: &[u8]) -> Option<Value> {
    let rest = body.strip_prefix(b"k8s\x00")?;
    let mut r = Reader { buf: rest, pos: 0 };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while !r.done() {
        match r.field()? {
            (1, 2, Some(tm), _) => {
                let mut t = Reader { buf: tm, pos: 0 };
                while !t.done() {
                    match t.field()? {
                        (1, 2, Some(b), _) => api_version = String::from_utf8(b.to_vec()).ok()?,
                        (2, 2, Some(b), _) => kind = String::from_utf8(b.to_vec()).ok()?,
                        _ => {}
                    }
                }
            }
            (2, 2, Some(b), _) => raw = b,
            _ => {}
        }
    }
    if schema(&kind).is_empty() || api_version != "v1" {
        return None;
    }
    let mut obj = message(raw, &kind)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(num << 3 | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let meta = [
            field(1, b"settings"),
            field(11, &[field(1, b"app"), field(2, b"web")].concat()),
        ]
        .concat();
        let cm = [
            field(1, &meta),
            field(2, &[field(1, b"a"), field(2, b"1")].concat()),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [b"k8s\x00".to_vec(), field(1, &type_meta), field(2, &cm)].concat();
        let v = decode(&body);
        assert_eq!(
            v,
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "settings", "labels": {"app": "web"}}, "data": {"a": "1"}}))
        );
        assert_eq!(decode(b"not protobuf"), None);
    }
}
