//! cgroups (placeholder)
