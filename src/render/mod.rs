//! Rendering: build variables applied by templating, then the kustomize engine.
//! Pure: files in, objects out; no network, no cluster, no printing.

pub mod kustomize;
pub mod output;
mod scalar;
pub mod source;
pub mod template;
pub mod yaml;

pub use kustomize::KustomizeError;
pub use source::{DataHook, DataUse, Document, FsSource, Source, SourceError};
pub use template::{TemplateError, Templater};
