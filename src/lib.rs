//! lookctl
