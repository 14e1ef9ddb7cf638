//! What a failed rollout shows besides its reason: the recent Events of the workload and
//! of the failing Pod (core v1 Events, by `involvedObject`), and the last lines of the
//! failing container's log (`pods/{name}/log`).
//!
//! Everything here is best effort and bounded: a failed read becomes a line that says
//! why (never a second failure), every read has a deadline, and the text is cleaned of
//! terminal control characters (a log is written by the application, not by us).

use std::time::Duration;

use kube::api::{ListParams, LogParams};
use kube::core::{ApiResource, DynamicObject};
use serde_json::Value;

use super::ClusterClient;

/// How many Events a failure shows (the most recent ones).
pub const MAX_EVENTS: usize = 10;
/// How many log lines a failure shows.
pub const LOG_LINES: i64 = 20;
/// A log excerpt never exceeds this many bytes (a container that logs one huge line).
const LOG_BYTES: i64 = 16 * 1024;
/// Each line shown is cut to this many characters.
const LINE_CHARS: usize = 400;
/// Reading Events or a log never takes longer: the deploy has already failed.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One Event, as `kubectl describe` lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventLine {
    /// `Pod web-5d8f9c7b4-x2x9z`.
    pub object: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// How many times the Event was seen.
    pub count: i64,
    /// RFC 3339, when it was last seen (if the server says).
    pub last_seen: Option<String>,
}

/// The last lines of a container's log, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LogExcerpt {
    Lines {
        pod: String,
        container: String,
        /// The log of the previous (crashed) instance of the container.
        previous: bool,
        lines: Vec<String>,
    },
    Unavailable {
        pod: String,
        container: String,
        reason: String,
    },
}

/// What the cluster says about a failed rollout, besides its reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics {
    /// The most recent Events of the workload and its failing Pod, oldest first.
    pub events: Vec<EventLine>,
    /// Why the Events could not be read, if they could not.
    pub events_error: Option<String>,
    pub log: Option<LogExcerpt>,
}

/// Why the Events of a failed rollout could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot list Events in {namespace}: {reason}")]
    List { namespace: String, reason: String },
    #[error("listing Events in {namespace} took longer than {}s", READ_TIMEOUT.as_secs())]
    Timeout { namespace: String },
}

/// The Events whose involvedObject is one of `objects` (kind, name) in `namespace`,
/// the `MAX_EVENTS` most recent, oldest first.
pub(super) async fn recent_events(
    client: &ClusterClient,
    namespace: &str,
    objects: &[(&str, &str)],
) -> Result<Vec<EventLine>, EventsError> {
    let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(
        client.client.clone(),
        namespace,
        &ApiResource::erase::<k8s_openapi::api::core::v1::Event>(&()),
    );
    let mut found = Vec::new();
    for (kind, name) in objects {
        // The server filters by name; the kind is checked here too, so that a fake or
        // old server that ignores part of the selector shows nothing foreign.
        let lp = ListParams::default()
            .fields(&format!(
                "involvedObject.kind={kind},involvedObject.name={name}"
            ))
            .limit(100);
        let list = match tokio::time::timeout(READ_TIMEOUT, api.list(&lp)).await {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                return Err(EventsError::List {
                    namespace: namespace.to_owned(),
                    reason: api_message(&e),
                });
            }
            Err(_) => {
                return Err(EventsError::Timeout {
                    namespace: namespace.to_owned(),
                });
            }
        };
        for item in list.items {
            let v = serde_json::to_value(&item).unwrap_or(Value::Null);
            if let Some(line) = event_line(&v, kind, name) {
                found.push(line);
            }
        }
    }
    Ok(most_recent(found))
}

fn text(v: &Value, pointer: &str) -> String {
    clean(
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
}

/// One Event of `kind`/`name`, `None` when it is about something else.
fn event_line(v: &Value, kind: &str, name: &str) -> Option<EventLine> {
    let involved = v.get("involvedObject")?;
    if involved.get("kind").and_then(Value::as_str) != Some(kind)
        || involved.get("name").and_then(Value::as_str) != Some(name)
    {
        return None;
    }
    let last_seen = [
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| v.pointer(p).and_then(Value::as_str))
    .map(str::to_owned);
    Some(EventLine {
        object: format!("{kind} {name}"),
        type_: text(v, "/type"),
        reason: text(v, "/reason"),
        message: text(v, "/message"),
        count: v.get("count").and_then(Value::as_i64).unwrap_or(1).max(1),
        last_seen,
    })
}

/// The `MAX_EVENTS` most recent events, oldest first (RFC 3339 UTC sorts as text).
fn most_recent(mut events: Vec<EventLine>) -> Vec<EventLine> {
    events.sort_by(|a, b| a.last_seen.cmp(&b.last_seen));
    let skip = events.len().saturating_sub(MAX_EVENTS);
    events.split_off(skip)
}

/// The last `LOG_LINES` lines of `container` in `pod` (of its previous instance with
/// `previous`, the one that crashed), or why the API server could not give them.
pub(super) async fn log_tail(
    client: &ClusterClient,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> LogExcerpt {
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.client.clone(), namespace);
    let lp = LogParams {
        container: Some(container.to_owned()),
        tail_lines: Some(LOG_LINES),
        limit_bytes: Some(LOG_BYTES),
        previous,
        ..LogParams::default()
    };
    let unavailable = |reason: String| LogExcerpt::Unavailable {
        pod: pod.to_owned(),
        container: container.to_owned(),
        reason,
    };
    match tokio::time::timeout(READ_TIMEOUT, api.logs(pod, &lp)).await {
        Ok(Ok(text)) => LogExcerpt::Lines {
            pod: pod.to_owned(),
            container: container.to_owned(),
            previous,
            lines: log_lines(&text),
        },
        Ok(Err(e)) => unavailable(why_no_log(&e)),
        Err(_) => unavailable(format!(
            "the API server did not answer within {}s (it reads logs from the node's kubelet)",
            READ_TIMEOUT.as_secs()
        )),
    }
}

/// Why a log read failed, in the words a user needs: the API server proxies logs from
/// the kubelet of the Pod's node, which a simulated node (kwok) does not have.
fn why_no_log(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if status.code == 400 => {
            format!("the container has no log yet: {}", clean(&status.message))
        }
        kube::Error::Api(status) if status.code == 403 => {
            format!("not allowed to read pods/log: {}", clean(&status.message))
        }
        kube::Error::Api(status) if status.code == 404 || status.code >= 500 => format!(
            "the API server could not get it from the node's kubelet (a simulated node, \
             such as kwok's, has none): {}",
            clean(&status.message)
        ),
        other => api_message(other),
    }
}

/// The server's message for an API error (not the whole Status), else the error.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => clean(&format!("{} ({})", status.message, status.code)),
        other => clean(&other.to_string()),
    }
}

/// The lines of a log, each cleaned and cut, the last `LOG_LINES` at most.
fn log_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(LOG_LINES as usize);
    lines[skip..].iter().map(|l| clean(l)).collect()
}

/// Text from the cluster made safe for a terminal: control characters (escape
/// sequences, carriage returns) become `?`, and the text is cut at `LINE_CHARS`.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(LINE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > LINE_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_about_another_object_is_left_out() {
        let ev = json!({"involvedObject": {"kind": "Pod", "name": "web-1"}, "type": "Warning",
            "reason": "BackOff", "message": "Back-off restarting", "count": 4,
            "lastTimestamp": "2026-01-01T00:00:04Z"});
        let line = event_line(&ev, "Pod", "web-1").unwrap_or_else(|| panic!("kept"));
        assert_eq!(line.object, "Pod web-1");
        assert_eq!(line.count, 4);
        assert_eq!(event_line(&ev, "Pod", "web-2"), None);
        assert_eq!(event_line(&ev, "Deployment", "web-1"), None);
    }

    #[test]
    fn only_the_most_recent_events_are_kept_oldest_first() {
        let events: Vec<EventLine> = (0..15)
            .rev()
            .map(|i| EventLine {
                object: "Pod p".into(),
                type_: "Normal".into(),
                reason: format!("R{i:02}"),
                message: String::new(),
                count: 1,
                last_seen: Some(format!("2026-01-01T00:00:{i:02}Z")),
            })
            .collect();
        let kept = most_recent(events);
        assert_eq!(kept.len(), MAX_EVENTS);
        assert_eq!(kept[0].reason, "R05");
        assert_eq!(kept[MAX_EVENTS - 1].reason, "R14");
    }

    #[test]
    fn log_text_cannot_drive_the_terminal_and_is_bounded() {
        let text: String = (0..50).map(|i| format!("line {i}\x1b[2J\rX\n")).collect();
        let lines = log_lines(&text);
        assert_eq!(lines.len(), LOG_LINES as usize);
        assert_eq!(lines[0], "line 30?[2J?X");
        let long = "x".repeat(LINE_CHARS * 2);
        assert_eq!(clean(&long).chars().count(), LINE_CHARS + 1);
    }
}
