//! What this binary is: lookctl's version and the git commit it was built from (recorded
//! by build.rs), for `lookctl version`, `--version` and bug reports.

use schemars::JsonSchema;
use serde::Serialize;

/// The commit lookctl was built from: 40 hex digits, or "unknown" for a build outside a
/// git checkout without `LOOKCTL_BUILD_COMMIT`.
pub const COMMIT: &str = env!("LOOKCTL_COMMIT");

/// `--version`: the package version and the commit.
pub const SHORT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LOOKCTL_COMMIT"),
    ")"
);

/// `lookctl version -o json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// lookctl's version (Cargo.toml).
    pub version: &'static str,
    /// The git commit lookctl was built from, or "unknown".
    pub commit: &'static str,
    /// The commit's date (YYYY-MM-DD), when the build saw the commit in a checkout.
    pub commit_date: Option<&'static str>,
    /// The platform the binary was built for, e.g. x86_64-unknown-linux-gnu.
    pub target: &'static str,
}

/// This binary's build information.
pub fn build_info() -> BuildInfo {
    let date = env!("LOOKCTL_COMMIT_DATE");
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: COMMIT,
        commit_date: (!date.is_empty()).then_some(date),
        target: env!("LOOKCTL_TARGET"),
    }
}
