//! capsa-spec: reads an OCI bundle's `config.json` and validates it into a
//! [`ValidSpec`], the only form of the configuration the rest of capsa sees.
//!
//! The flow is one way: bytes → `oci_spec::runtime::Spec` (serde, with the
//! JSON path of any type error) → [`validate`] → [`ValidSpec`]. Required fields
//! of `ValidSpec` are not `Option`, so later stages never re-check them.
//! Nothing here touches the host: the crate is pure and unit-testable.
//!
//! ```
//! let json = br#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
//!   "process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},
//!   "linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#;
//! let spec = capsa_spec::parse(json, std::path::Path::new("/bundles/demo")).unwrap();
//! assert_eq!(spec.root.path, std::path::Path::new("/bundles/demo/rootfs"));
//! assert_eq!(spec.process.unwrap().args, vec!["sh".to_string()]);
//! ```

mod error;
mod types;
mod validate;

pub mod default_config;

use std::path::Path;

pub use error::SpecError;
pub use types::*;

/// The file name of the configuration inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// Reads `<bundle>/config.json` and validates it.
///
/// `bundle` should be absolute: relative paths inside the config (such as
/// `root.path`) are resolved against it and kept in the result.
pub fn load(bundle: &Path) -> Result<ValidSpec, SpecError> {
    let file = bundle.join(CONFIG_FILE);
    let bytes = std::fs::read(&file).map_err(|source| SpecError::Read {
        path: file.clone(),
        source,
    })?;
    parse(&bytes, bundle)
}

/// Parses and validates the bytes of a `config.json` from `bundle`.
pub fn parse(bytes: &[u8], bundle: &Path) -> Result<ValidSpec, SpecError> {
    let raw = decode(bytes)?;
    validate::validate(raw, bundle)
}

/// Parses the `Process` JSON that `capsa exec --process FILE` reads, with the
/// checks of config.json's `process`; errors name `process.json` and the
/// JSON path inside it.
pub fn parse_process(bytes: &[u8]) -> Result<Process, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw: oci_spec::runtime::Process =
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            error::from_serde(e.path().to_string(), e.into_inner()).in_file("process.json")
        })?;
    de.end()
        .map_err(|e| error::from_serde(String::new(), e).in_file("process.json"))?;
    validate::process(&raw).map_err(|e| e.in_file("process.json").strip_path_prefix("process."))
}

/// Parses the `LinuxResources` JSON that `capsa update --resources` reads
/// (what containerd, CRI-O and podman send) and checks it as config.json's
/// `linux.resources` is checked. Errors name the field as
/// `linux.resources.<field>` and the file `--resources`.
pub fn parse_resources(bytes: &[u8]) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    const FILE: &str = "--resources";
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw: oci_spec::runtime::LinuxResources = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| {
            let path = match e.path().to_string() {
                p if p == "." => "linux.resources".to_string(),
                p => format!("linux.resources.{p}"),
            };
            error::from_serde(path, e.into_inner()).in_file(FILE)
        })?;
    de.end()
        .map_err(|e| error::from_serde(String::new(), e).in_file(FILE))?;
    validate_resources(&raw).map_err(|e| e.in_file(FILE))?;
    Ok(raw)
}

/// Checks a `LinuxResources` that did not come through [`parse`] or
/// [`parse_resources`] (a library caller's own value).
pub fn validate_resources(r: &oci_spec::runtime::LinuxResources) -> Result<(), SpecError> {
    validate::resources::validate(r)
}

pub use validate::resources::SWAPPINESS_UNSET;

/// Decodes JSON into oci-spec types, keeping the JSON path of the first
/// value of the wrong shape (`linux.namespaces[2].type`).
fn decode(bytes: &[u8]) -> Result<oci_spec::runtime::Spec, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let spec: oci_spec::runtime::Spec = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| error::from_serde(e.path().to_string(), e.into_inner()))?;
    de.end().map_err(|e| error::from_serde(String::new(), e))?;
    Ok(spec)
}
