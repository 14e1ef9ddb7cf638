//! `lookctl version`.

use crate::version::BuildInfo;

/// One line: `lookctl 0.1.0 (commit 0123abc…, 2026-11-30, x86_64-unknown-linux-gnu)`.
pub fn human(info: &BuildInfo) -> String {
    let mut about = vec![format!("commit {}", info.commit)];
    about.extend(info.commit_date.map(str::to_owned));
    if !info.target.is_empty() {
        about.push(info.target.to_owned());
    }
    format!("lookctl {} ({})\n", info.version, about.join(", "))
}
