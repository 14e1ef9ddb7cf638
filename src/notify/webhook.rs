//! Slack-compatible webhooks: `{"text": ..., "blocks": [...]}` POSTed as JSON. `text` is
//! the whole message (what plain receivers and notifications show); `blocks` lay it out
//! for Slack. The URL is a secret: a failure names the webhook, never its URL.

use serde_json::{Value, json};

use super::http::{Failure, Http};
use super::{Event, Finish, Kind, Webhook, truncate};

/// One message, rendered for every webhook.
pub(super) struct Message {
    text: String,
    fields: Vec<(String, String)>,
}

impl Message {
    pub fn finished(event: &Event<'_>, finish: &Finish, log_url: Option<&str>) -> Message {
        let what = match &event.kind {
            Kind::Deploy { target } => format!("`{}` to *{target}*", event.short_commit()),
            Kind::Review { namespace, .. } => {
                format!(
                    "`{}` to review environment *{namespace}*",
                    event.short_commit()
                )
            }
        };
        let text = match finish {
            Finish::Success => format!(":white_check_mark: {}: deployed {what}", event.project),
            Finish::Failure(reason) => format!(
                ":x: {}: deploying {what} failed: {}",
                event.project,
                truncate(reason, 300)
            ),
            Finish::Error(reason) => format!(
                ":warning: {}: deploying {what} stopped: {}",
                event.project,
                truncate(reason, 300)
            ),
        };
        let mut fields = vec![
            ("Commit".to_owned(), format!("`{}`", event.commit)),
            ("By".to_owned(), event.identity.to_owned()),
        ];
        if let Some(url) = event.environment_url() {
            fields.push(("Environment".to_owned(), format!("<{url}>")));
        }
        if let Some(url) = log_url {
            fields.push(("Log".to_owned(), format!("<{url}|CI run>")));
        }
        Message { text, fields }
    }

    pub fn review_down(event: &Event<'_>) -> Message {
        Message {
            text: format!(
                ":wastebasket: {}: review environment *{}* (`{}`) deleted",
                event.project,
                event.environment(),
                event.short_commit()
            ),
            fields: vec![("By".to_owned(), event.identity.to_owned())],
        }
    }

    pub fn to_json(&self) -> Value {
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|(k, v)| json!({ "type": "mrkdwn", "text": format!("*{k}*\n{v}") }))
            .collect();
        json!({
            "text": self.text,
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": self.text } },
                { "type": "section", "fields": fields },
            ],
        })
    }
}

/// POSTs the message; the problem, without the URL, when it failed.
pub(super) fn send(http: &Http, hook: &Webhook, message: &Message) -> Result<(), Failure> {
    let body = message.to_json();
    http.send(|client| client.post(hook.url.expose()).json(&body))
        .map(|_| ())
        .map_err(|failure| Failure {
            what: failure.what.replace(hook.url.expose(), "<redacted URL>"),
            ..failure
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_text_and_blocks() {
        let e = Event {
            project: "shop",
            commit: "0123456789abcdef0123456789abcdef01234567",
            identity: "me@host",
            kind: Kind::Deploy { target: "staging" },
        };
        let v = Message::finished(&e, &Finish::Success, Some("https://ci/run/1")).to_json();
        let text = v["text"].as_str().unwrap_or_default();
        assert!(text.contains("shop") && text.contains("staging"), "{text}");
        assert_eq!(v["blocks"][0]["text"]["text"], v["text"]);
        assert_eq!(v["blocks"][1]["fields"].as_array().map(Vec::len), Some(3));
    }
}
