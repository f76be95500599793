//! capsa-linux
pub mod cgroups;
