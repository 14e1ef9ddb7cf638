//! `review list`: the table and the `--output json` shape, as pure functions of the
//! environments, their health (which the cluster module reports) and the time. The
//! review module decides; this only presents.

use std::time::SystemTime;

use serde::Serialize;

use crate::review::{ReviewEnv, expires_in, format_duration, format_time};

/// One environment with its health as the cluster reports it (`Ready`, `Degraded: …`).
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub env: ReviewEnv,
    pub health: Option<String>,
}

/// One environment in `review list --output json`. Times are RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListItem {
    pub sha: String,
    pub short_sha: String,
    pub namespace: String,
    pub project: String,
    pub created: Option<String>,
    pub last_deployed: Option<String>,
    pub expires: Option<String>,
    /// Seconds until expiry; negative once expired; `null` when pinned or unknown.
    pub expires_in_seconds: Option<i64>,
    /// Past its expiry or expiry unknown; pinned environments never are.
    pub expired: bool,
    pub pinned: bool,
    pub deployed_by: Option<String>,
    pub url: Option<String>,
    pub health: Option<String>,
    /// Labels or annotations lookctl could not read.
    pub unreadable: Vec<String>,
}

/// Most recently deployed first; unknown last.
fn sorted(entries: &[ListEntry]) -> Vec<&ListEntry> {
    let mut out: Vec<&ListEntry> = entries.iter().collect();
    out.sort_by(|a, b| {
        b.env
            .last_activity()
            .cmp(&a.env.last_activity())
            .then_with(|| a.env.namespace.cmp(&b.env.namespace))
    });
    out
}

fn signed_seconds(from: SystemTime, to: SystemTime) -> i64 {
    match to.duration_since(from) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The JSON items, in the table's order.
pub fn list_items(entries: &[ListEntry], now: SystemTime) -> Vec<ListItem> {
    sorted(entries)
        .into_iter()
        .map(|ListEntry { env, health }| ListItem {
            sha: env.sha.clone(),
            short_sha: env.short_sha().to_owned(),
            namespace: env.namespace.clone(),
            project: env.project.clone(),
            created: env.created.map(format_time),
            last_deployed: env.last_deployed.map(format_time),
            expires: env.expires.map(format_time),
            expires_in_seconds: env
                .expires
                .filter(|_| !env.pinned)
                .map(|t| signed_seconds(now, t)),
            expired: !env.pinned && env.is_expired(now),
            pinned: env.pinned,
            deployed_by: env.deployed_by.clone(),
            url: env.url.clone(),
            health: health.clone(),
            unreadable: env.unreadable.clone(),
        })
        .collect()
}

fn ago(t: Option<SystemTime>, now: SystemTime) -> String {
    match t {
        None => "unknown".into(),
        Some(t) => format_duration(now.duration_since(t).unwrap_or_default()),
    }
}

/// The `review list` table: SHA, NAMESPACE, AGE, LAST DEPLOYED, EXPIRES IN, PINNED,
/// URL, HEALTH; columns separated by three spaces, most recently deployed first.
pub fn format_table(entries: &[ListEntry], now: SystemTime) -> String {
    if entries.is_empty() {
        return "no review environments\n".into();
    }
    let header = [
        "SHA",
        "NAMESPACE",
        "AGE",
        "LAST DEPLOYED",
        "EXPIRES IN",
        "PINNED",
        "URL",
        "HEALTH",
    ]
    .map(str::to_owned);
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let mut rows = vec![header];
    rows.extend(
        sorted(entries)
            .into_iter()
            .map(|ListEntry { env, health }| {
                [
                    if env.sha.is_empty() {
                        "?".into()
                    } else {
                        env.short_sha().to_owned()
                    },
                    env.namespace.clone(),
                    ago(env.created, now),
                    match env.last_deployed {
                        None => "unknown".into(),
                        Some(_) => format!("{} ago", ago(env.last_deployed, now)),
                    },
                    expires_in(env, now),
                    if env.pinned { "yes" } else { "no" }.into(),
                    dash(&env.url),
                    dash(health),
                ]
            }),
    );
    crate::table::format(&rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_800_000_000;
    const H: u64 = 3600;

    fn entries() -> Vec<ListEntry> {
        let base = ReviewEnv {
            namespace: "review-0123456".into(),
            project: "shop".into(),
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            pinned: false,
            created: Some(at(NOW - 50 * H)),
            last_deployed: Some(at(NOW - 2 * H)),
            expires: Some(at(NOW + 70 * H)),
            deployed_by: Some("alice@laptop".into()),
            url: Some("https://0123456.review.example.com".into()),
            unreadable: vec![],
        };
        vec![
            ListEntry {
                env: ReviewEnv {
                    namespace: "review-fedcba9".into(),
                    sha: "fedcba9".into(),
                    pinned: true,
                    last_deployed: Some(at(NOW - 100 * H)),
                    created: Some(at(NOW - 100 * H)),
                    expires: Some(at(NOW - 28 * H)),
                    url: None,
                    ..base.clone()
                },
                health: None,
            },
            ListEntry {
                env: base.clone(),
                health: Some("Ready".into()),
            },
            ListEntry {
                env: ReviewEnv {
                    namespace: "review-garbled".into(),
                    sha: String::new(),
                    created: None,
                    last_deployed: None,
                    expires: None,
                    unreadable: vec!["lookctl.dev/expires".into()],
                    ..base
                },
                health: Some("Degraded: web 0/1 ready".into()),
            },
        ]
    }

    #[test]
    fn table_text() {
        let text = format_table(&entries(), at(NOW));
        let expected = "\
SHA       NAMESPACE        AGE       LAST DEPLOYED   EXPIRES IN   PINNED   URL                                  HEALTH
0123456   review-0123456   2d2h      2h ago          2d22h        no       https://0123456.review.example.com   Ready
fedcba9   review-fedcba9   4d4h      4d4h ago        never        yes      -                                    -
?         review-garbled   unknown   unknown         unknown      no       https://0123456.review.example.com   Degraded: web 0/1 ready
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn empty_table() {
        assert_eq!(format_table(&[], at(NOW)), "no review environments\n");
    }

    #[test]
    fn json_shape() {
        let items = list_items(&entries(), at(NOW));
        let value = serde_json::to_value(&items).expect("serializes");
        let first = &value[0];
        assert_eq!(first["shortSha"], "0123456");
        assert_eq!(first["namespace"], "review-0123456");
        assert_eq!(first["expires"], "2027-01-18T06:00:00Z");
        assert_eq!(first["expiresInSeconds"], 70 * H);
        assert_eq!(first["expired"], false);
        assert_eq!(first["health"], "Ready");
        assert_eq!(value[1]["pinned"], true);
        assert_eq!(value[1]["expired"], false);
        assert_eq!(value[1]["expiresInSeconds"], serde_json::Value::Null);
        assert_eq!(value[2]["expired"], true);
        assert_eq!(value[2]["unreadable"][0], "lookctl.dev/expires");
    }
}
