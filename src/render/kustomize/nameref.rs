//! Fixing name references after renames (prefix/suffix, hash suffix, namespace), the way
//! kustomize's api/filters/nameref chooses the referral, but indexed by previous name so
//! that the cost is linear in the number of objects.

use std::collections::{HashMap, HashSet};

use super::config::{FieldSpec, NameBackRef};
use super::fieldspec::{self, Create, FieldSpecError};
use super::resource::{Gvk, ResId, Resource};
use crate::render::source::Document;

/// Why name references could not be fixed.
#[derive(Debug, thiserror::Error)]
pub enum NameRefError {
    #[error("namespace is blank for a ServiceAccount subject of {0}")]
    BlankSubjectNamespace(ResId),
    #[error("updating name reference in '{path}' field of '{referrer}': {problem}")]
    Update {
        path: String,
        referrer: ResId,
        problem: FieldSpecError<ReferralProblem>,
    },
}

/// Why one name reference field could not be pointed at its referral.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferralProblem {
    #[error("is expected to be either a string or a map of string")]
    NotStringOrMap,
    #[error("found multiple possible referrals: {}", .0.iter().map(ResId::to_string).collect::<Vec<_>>().join(", "))]
    Ambiguous(Vec<ResId>),
    #[error("path config error; no 'name' field in node")]
    NoName,
}

/// What the referral choice needs to know about a resource, computed once.
struct Info {
    cur: ResId,
    prev: Vec<ResId>,
    org: ResId,
    kind: String,
}

pub fn fix(resources: &mut [Resource], backrefs: &[NameBackRef]) -> Result<(), NameRefError> {
    let infos: Vec<Info> = resources
        .iter()
        .map(|r| {
            let prev = r.prev_ids();
            let cur = r.cur_id();
            Info {
                org: prev.first().cloned().unwrap_or_else(|| cur.clone()),
                kind: cur.gvk.kind.clone(),
                cur,
                prev,
            }
        })
        .collect();
    // Only renamed resources can be referral candidates (kustomize's previousNameMatches).
    let mut by_prev_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, info) in infos.iter().enumerate() {
        let mut seen = HashSet::new();
        for p in &info.prev {
            if seen.insert(p.name.as_str()) {
                by_prev_name.entry(p.name.as_str()).or_default().push(i);
            }
        }
    }
    // kustomize reads RoleBinding subjects' namespaces while looking for referrals and
    // refuses a ServiceAccount subject whose namespace is present but not a string.
    for (r, info) in resources.iter().zip(&infos) {
        if info.cur.gvk.kind == "RoleBinding"
            && let Some(Document::Sequence(subs)) = r.doc.get("subjects")
            && subs.iter().any(|s| {
                s.get("kind").and_then(Document::as_str) == Some("ServiceAccount")
                    && s.get("namespace").is_some_and(|ns| !ns.is_string())
            })
        {
            return Err(NameRefError::BlankSubjectNamespace(info.cur.clone()));
        }
    }
    if by_prev_name.is_empty() {
        return Ok(());
    }
    let affixes: Vec<(Vec<String>, Vec<String>)> = resources
        .iter()
        .map(|r| (r.prefixes.clone(), r.suffixes.clone()))
        .collect();
    for (ri, referrer) in resources.iter_mut().enumerate() {
        let mut jobs: Vec<(&FieldSpec, &Gvk)> = Vec::new();
        for b in backrefs {
            for fs in &b.referrers {
                if infos[ri].org.gvk.is_selected(&fs.gvk) {
                    jobs.push((fs, &b.gvk));
                }
            }
        }
        if jobs.is_empty() {
            continue;
        }
        let rb_namespaces = role_binding_namespaces(&referrer.doc, &infos[ri]);
        let role_ref = role_ref_gvk(&referrer.doc);
        let ctx = Ctx {
            infos: &infos,
            by_prev_name: &by_prev_name,
            affixes: &affixes,
            me: ri,
            rb_namespaces,
        };
        for (fs, target) in jobs {
            let spec = FieldSpec {
                gvk: Gvk::default(),
                path: fs.path.clone(),
                create: false,
            };
            let is_role_ref = fs.path.ends_with("roleRef/name");
            let rr = if is_role_ref { role_ref.as_ref() } else { None };
            let mut set = |node: &mut Document| ctx.set(node, target, rr);
            fieldspec::apply(&mut referrer.doc, &spec, Create::Never, &mut set).map_err(
                |problem| NameRefError::Update {
                    path: fs.path.clone(),
                    referrer: infos[ri].cur.clone(),
                    problem,
                },
            )?;
        }
    }
    Ok(())
}

struct Ctx<'a> {
    infos: &'a [Info],
    by_prev_name: &'a HashMap<&'a str, Vec<usize>>,
    affixes: &'a [(Vec<String>, Vec<String>)],
    me: usize,
    rb_namespaces: HashSet<String>,
}

impl Ctx<'_> {
    fn set(
        &self,
        node: &mut Document,
        target: &Gvk,
        role_ref: Option<&Gvk>,
    ) -> Result<(), ReferralProblem> {
        match node {
            Document::Null => Ok(()),
            Document::String(_) => self.set_scalar(node, target, role_ref),
            Document::Mapping(_) => self.set_mapping(node, target, role_ref),
            Document::Sequence(items) => {
                for item in items {
                    match item {
                        Document::Null => {}
                        Document::String(_) => self.set_scalar(item, target, role_ref)?,
                        Document::Mapping(_) => self.set_mapping(item, target, role_ref)?,
                        _ => {
                            return Err(ReferralProblem::NotStringOrMap);
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether candidate `c` could be referenced by the referrer at all
    /// (kustomize's SubsetThatCouldBeReferencedByResource).
    fn reachable(&self, c: usize) -> bool {
        let me = &self.infos[self.me].cur;
        let cand = &self.infos[c].cur;
        me.gvk.is_cluster_scoped()
            || cand.gvk.is_cluster_scoped()
            || me.effective_namespace() == cand.effective_namespace()
            || self.rb_namespaces.contains(&cand.namespace)
    }

    fn candidates(&self, old: &str, target: &Gvk, role_ref: Option<&Gvk>) -> Vec<usize> {
        let Some(list) = self.by_prev_name.get(old) else {
            return Vec::new();
        };
        let me = &self.infos[self.me].cur;
        list.iter()
            .copied()
            .filter(|&c| self.reachable(c))
            .filter(|&c| self.infos[c].prev.iter().any(|p| p.gvk.is_selected(target)))
            .filter(|&c| {
                role_ref.is_none_or(|g| self.infos[c].prev.iter().any(|p| p.gvk.is_selected(g)))
            })
            .filter(|&c| {
                let cand = &self.infos[c];
                me.gvk.is_cluster_scoped()
                    || cand.cur.gvk.is_cluster_scoped()
                    || cand.kind == "ServiceAccount"
                    || me.effective_namespace() == cand.cur.effective_namespace()
            })
            .collect()
    }

    fn affix_equal(&self, c: usize, allow_empty: bool) -> bool {
        let (p1, s1) = &self.affixes[c];
        let (p2, s2) = &self.affixes[self.me];
        // kustomize's SameEndingSubSlice: an empty list matches only an empty list.
        let same = |a: &[String], b: &[String]| {
            let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            if short.is_empty() {
                return long.is_empty();
            }
            long[long.len() - short.len()..] == *short
        };
        if allow_empty {
            (p1.is_empty() || p2.is_empty() || same(p1, p2))
                && (s1.is_empty() || s2.is_empty() || same(s1, s2))
        } else {
            same(p1, p2) && same(s1, s2)
        }
    }

    fn select(&self, mut c: Vec<usize>, with_ns: bool) -> Result<Option<usize>, ReferralProblem> {
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|&x| self.affix_equal(x, true));
        if c.len() > 1 {
            c.retain(|&x| self.affix_equal(x, false));
        }
        match c.len() {
            0 => Ok(None),
            1 => Ok(Some(c[0])),
            _ => {
                let first = &self.infos[c[0]].cur;
                let identical = c.iter().all(|&x| {
                    let o = &self.infos[x].cur;
                    o.name == first.name && (!with_ns || o.namespace == first.namespace)
                });
                if identical {
                    Ok(Some(c[0]))
                } else {
                    Err(ReferralProblem::Ambiguous(
                        c.iter().map(|&x| self.infos[x].cur.clone()).collect(),
                    ))
                }
            }
        }
    }

    fn set_scalar(
        &self,
        node: &mut Document,
        target: &Gvk,
        role_ref: Option<&Gvk>,
    ) -> Result<(), ReferralProblem> {
        let Some(old) = node.as_str() else {
            return Ok(());
        };
        let c = self.candidates(old, target, role_ref);
        if let Some(r) = self.select(c, false)? {
            let name = &self.infos[r].cur.name;
            if name != old {
                *node = Document::String(name.clone());
            }
        }
        Ok(())
    }

    fn set_mapping(
        &self,
        node: &mut Document,
        target: &Gvk,
        role_ref: Option<&Gvk>,
    ) -> Result<(), ReferralProblem> {
        let Document::Mapping(m) = node else {
            return Ok(());
        };
        let Some(old) = m.get("name").and_then(super::resource::scalar_string) else {
            return Err(ReferralProblem::NoName);
        };
        let mut c = self.candidates(&old, target, role_ref);
        if let Some(ns) = m.get("namespace").and_then(super::resource::scalar_string) {
            // kustomize groups by original namespace first, then by current namespace.
            let by_org: Vec<usize> = c
                .iter()
                .copied()
                .filter(|&x| {
                    let i = &self.infos[x];
                    !i.org.gvk.is_cluster_scoped() && i.org.effective_namespace() == ns
                })
                .collect();
            let any_org = (0..self.infos.len()).any(|x| {
                let i = &self.infos[x];
                self.reachable(x)
                    && !i.org.gvk.is_cluster_scoped()
                    && i.org.effective_namespace() == ns
            });
            c = if any_org {
                by_org
            } else {
                c.into_iter()
                    .filter(|&x| {
                        let i = &self.infos[x];
                        !i.cur.gvk.is_cluster_scoped() && i.cur.effective_namespace() == ns
                    })
                    .collect()
            };
        }
        let Some(r) = self.select(c, true)? else {
            return Ok(());
        };
        let cur = &self.infos[r].cur;
        if cur.name == old && cur.namespace.is_empty() {
            return Ok(());
        }
        m.insert(
            Document::String("name".into()),
            Document::String(cur.name.clone()),
        );
        if !cur.namespace.is_empty() {
            m.insert(
                Document::String("namespace".into()),
                Document::String(cur.namespace.clone()),
            );
        }
        Ok(())
    }
}

fn role_binding_namespaces(doc: &Document, info: &Info) -> HashSet<String> {
    let mut out = HashSet::new();
    if info.cur.gvk.kind != "RoleBinding" {
        return out;
    }
    if let Some(Document::Sequence(subs)) = doc.get("subjects") {
        for s in subs {
            if s.get("kind").and_then(Document::as_str) == Some("ServiceAccount")
                && let Some(ns) = s.get("namespace").and_then(Document::as_str)
            {
                out.insert(ns.to_owned());
            }
        }
    }
    out
}

fn role_ref_gvk(doc: &Document) -> Option<Gvk> {
    let rr = doc.get("roleRef")?;
    Some(Gvk {
        group: rr.get("apiGroup")?.as_str()?.to_owned(),
        version: String::new(),
        kind: rr.get("kind")?.as_str()?.to_owned(),
    })
}
