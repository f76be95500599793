//! capsa-spec
