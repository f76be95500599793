//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup
//! is a transient unit that systemd makes, owns and removes.
//!
//! `create` asks systemd's manager on the system bus to start a transient
//! scope `prefix-name.scope` (or a slice) holding the container init, with
//! `Delegate=yes` (the cgroup below is ours to manage) and the resource
//! properties systemd understands (`properties.rs`), waits for the job,
//! then the cgroupfs code makes what systemd did not (v1 hierarchies
//! systemd does not manage), joins the init to every hierarchy and writes
//! every resource to the files. `update` sets the properties again
//! (`SetUnitProperties`, runtime only) before the files; `delete` stops
//! the unit, which kills what is left and removes its cgroup, and the
//! cgroupfs code removes any directory systemd left.
//!
//! The unit, its slice and the bus address are kept in `state.json` (in
//! [`ContainerCgroup`]), so later commands need no flag.
//!
//! The D-Bus client is our own (`bus.rs`, `message.rs`, `wire.rs`): a few
//! hundred lines of blocking code, where a D-Bus crate would bring an async
//! runtime into a short-lived, fork-happy process.

mod bus;
mod message;
mod names;
mod properties;
mod wire;

use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use bus::{system_bus_address, DEFAULT_SYSTEM_BUS};
pub use names::{expand_slice, looks_like_systemd, UnitPath};
pub use properties::range_to_bits;

use super::{CgroupError, ContainerCgroup};
use bus::Bus;
use message::Message;
use properties::Property;
use wire::Value;

/// How long one operation (connect, start or stop, and its job) may take:
/// runc's 30 s.
const TIMEOUT: Duration = Duration::from_secs(30);

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// A failure talking to the bus.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("D-Bus address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot connect to the D-Bus socket {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("the bus at {address} refused authentication: {answer:?}")]
    Auth { address: String, answer: String },
    #[error("D-Bus connection {address}: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("malformed D-Bus message: {0}")]
    Protocol(String),
    #[error("{method} failed: {name}: {message}")]
    Remote {
        method: String,
        name: String,
        message: String,
    },
}

impl DbusError {
    fn is(&self, error_name: &str) -> bool {
        matches!(self, DbusError::Remote { name, .. } if name == error_name)
    }
}

/// The unit of a container managed by systemd, as kept in the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemdUnit {
    /// `prefix-name.scope` or `name.slice`.
    pub unit: String,
    /// Its parent slice.
    pub slice: String,
    /// The bus systemd was reached on.
    pub bus: String,
}

/// A connection to systemd's manager, subscribed to job signals.
struct Manager {
    bus: Bus,
    deadline: Instant,
}

impl Manager {
    fn connect(address: &str) -> Result<Manager, DbusError> {
        let deadline = Instant::now() + TIMEOUT;
        let mut bus = Bus::connect(address, TIMEOUT)?;
        // Before any job exists, so that no JobRemoved can be missed.
        let rule = format!(
            "type='signal',sender='{SYSTEMD}',path='{MANAGER_PATH}',interface='{MANAGER}',member='JobRemoved'"
        );
        let add_match = Message::call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
        );
        bus.call(add_match.with_body(vec![Value::Str(rule)]), deadline)?;
        let mut m = Manager { bus, deadline };
        // systemd sends job signals only while some client is subscribed.
        m.call("Subscribe", vec![])?;
        Ok(m)
    }

    fn call(&mut self, method: &str, body: Vec<Value>) -> Result<Vec<Value>, DbusError> {
        let msg = Message::call(SYSTEMD, MANAGER_PATH, MANAGER, method).with_body(body);
        self.bus.call(msg, self.deadline)
    }

    /// The manager's version number (`Version` is such as "252.22-1~deb12u1").
    fn version(&mut self) -> u32 {
        let get = Message::call(
            SYSTEMD,
            MANAGER_PATH,
            "org.freedesktop.DBus.Properties",
            "Get",
        )
        .with_body(vec![Value::str(MANAGER), Value::str("Version")]);
        let reply = self.bus.call(get, self.deadline);
        let text = match reply.as_deref() {
            Ok([Value::Variant(v)]) => v.as_str().unwrap_or_default().to_string(),
            _ => String::new(),
        };
        let digits: String = text
            .trim_start_matches(['"', 'v'])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap_or_else(|_| {
            tracing::warn!("systemd reported no usable Version ({reply:?}); properties that need a version are left to the cgroup files");
            0
        })
    }

    /// Waits for `JobRemoved` of `job` and returns its result ("done", ...).
    fn wait_job(&mut self, job: &str) -> Result<String, DbusError> {
        let what = format!("systemd to finish job {job}");
        loop {
            let signal = self.bus.next_signal(self.deadline, &what)?;
            if signal.member.as_deref() != Some("JobRemoved") {
                continue;
            }
            // JobRemoved(u id, o job, s unit, s result)
            if let [_, Value::ObjectPath(path), _, Value::Str(result)] = &signal.body[..] {
                if path == job {
                    return Ok(result.clone());
                }
            }
        }
    }

    fn reset_failed(&mut self, unit: &str) {
        if let Err(e) = self.call("ResetFailedUnit", vec![Value::str(unit)]) {
            tracing::debug!("ResetFailedUnit {unit}: {e}");
        }
    }
}

fn job_path(reply: &[Value]) -> Result<String, DbusError> {
    match reply {
        [Value::ObjectPath(p)] => Ok(p.clone()),
        other => Err(DbusError::Protocol(format!(
            "expected a job path in the reply, got {other:?}"
        ))),
    }
}

fn property_array(props: Vec<Property>) -> Value {
    Value::Array {
        elem: "(sv)".into(),
        items: props
            .into_iter()
            .map(|(name, v)| Value::Struct(vec![Value::Str(name), Value::variant(v)]))
            .collect(),
    }
}

impl ContainerCgroup {
    /// The systemd unit, when systemd manages this cgroup.
    pub fn systemd_unit(&self) -> Option<&SystemdUnit> {
        self.systemd.as_ref()
    }

    /// Whether the cgroup is pure cgroup v2 (which decides property names).
    fn is_pure_v2(&self) -> bool {
        self.hierarchies.iter().all(|h| h.is_v2)
    }

    fn unit_error(
        &self,
        unit: &SystemdUnit,
        action: &'static str,
    ) -> impl Fn(DbusError) -> CgroupError {
        let unit = unit.unit.clone();
        move |source| CgroupError::Systemd {
            unit: unit.clone(),
            action,
            source,
        }
    }

    /// systemd only: starts the transient unit holding `pid` with the
    /// resource properties of `resources`, and waits until systemd has
    /// made it. A scope of that name that exists already is an error (and
    /// is left alone: it is someone else's); a slice that exists is reused
    /// (the pid then joins by cgroupfs). A unit whose start job fails or
    /// times out is stopped again.
    pub fn start_unit(
        &self,
        pid: i32,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        let err = self.unit_error(unit, "start");
        let mut m = Manager::connect(&unit.bus).map_err(&err)?;
        let version = m.version();
        let v2 = self.is_pure_v2();
        let mut props = vec![(
            "Description".to_string(),
            Value::Str(format!("capsa container {}", unit.unit)),
        )];
        let is_slice = unit.unit.ends_with(".slice");
        if is_slice {
            // A slice's parent follows from its name; it only wants it.
            props.push((
                "Wants".into(),
                Value::Array {
                    elem: "s".into(),
                    items: vec![Value::str(&unit.slice)],
                },
            ));
        } else {
            props.push(("Slice".into(), Value::str(&unit.slice)));
            props.push(("Delegate".into(), Value::Bool(true)));
        }
        let pid = u32::try_from(pid).map_err(|_| CgroupError::InvalidPath {
            path: unit.unit.clone(),
            reason: "negative pid",
        })?;
        props.push((
            "PIDs".into(),
            Value::Array {
                elem: "u".into(),
                items: vec![Value::U32(pid)],
            },
        ));
        let io_accounting = if v2 {
            "IOAccounting"
        } else {
            "BlockIOAccounting"
        };
        for name in [
            "MemoryAccounting",
            "CPUAccounting",
            io_accounting,
            "TasksAccounting",
        ] {
            props.push((name.into(), Value::Bool(true)));
        }
        props.push(("DefaultDependencies".into(), Value::Bool(false)));
        if let Some(r) = resources {
            props.extend(properties::resource_properties(r, v2, version)?);
        }
        let body = vec![
            Value::str(&unit.unit),
            Value::str("replace"),
            property_array(props),
            Value::Array {
                elem: "(sa(sv))".into(),
                items: vec![],
            },
        ];
        let mut retried = false;
        let job = loop {
            match m.call("StartTransientUnit", body.clone()) {
                Ok(reply) => break job_path(&reply).map_err(&err)?,
                Err(e) if e.is("org.freedesktop.systemd1.UnitExists") && !retried => {
                    // Maybe a failed leftover: once reset, systemd drops it.
                    m.reset_failed(&unit.unit);
                    retried = true;
                }
                // A slice that exists is someone else's (runc reuses one only
                // when it is given no pid): taking it would have `delete`
                // stop it, and everything under it.
                Err(e) if e.is("org.freedesktop.systemd1.UnitExists") => {
                    return Err(CgroupError::SystemdUnitExists(unit.unit.clone()))
                }
                Err(e) => return Err(err(e)),
            }
        };
        // From here the unit is ours: on failure, leave none behind.
        let failed = match m.wait_job(&job) {
            Ok(result) if result == "done" => return Ok(()),
            Ok(result) => CgroupError::SystemdJob {
                unit: unit.unit.clone(),
                action: "start",
                result,
            },
            Err(e) => err(e),
        };
        if let Err(e) = m.call(
            "StopUnit",
            vec![Value::str(&unit.unit), Value::str("replace")],
        ) {
            tracing::debug!("StopUnit {} after a failed start: {e}", unit.unit);
        }
        m.reset_failed(&unit.unit);
        Err(failed)
    }

    /// systemd only: stops the unit and waits until it is gone. A unit
    /// that no longer exists is fine, so this can be repeated.
    pub(super) fn stop_unit(&self) -> Result<(), CgroupError> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        let err = self.unit_error(unit, "stop");
        let mut m = Manager::connect(&unit.bus).map_err(&err)?;
        match m.call(
            "StopUnit",
            vec![Value::str(&unit.unit), Value::str("replace")],
        ) {
            Ok(reply) => {
                let job = job_path(&reply).map_err(&err)?;
                let result = m.wait_job(&job).map_err(&err)?;
                if result != "done" {
                    tracing::warn!(
                        "systemd unit {}: stop job finished with {result:?}",
                        unit.unit
                    );
                }
            }
            Err(e) if e.is("org.freedesktop.systemd1.NoSuchUnit") => {}
            Err(e) => return Err(err(e)),
        }
        // A unit that failed stays listed until reset.
        m.reset_failed(&unit.unit);
        Ok(())
    }

    /// `update`: with systemd, the new values become the unit's properties
    /// (for this boot only, as runc) before they are written to the files.
    pub fn update_resources(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(unit) = &self.systemd {
            let err = self.unit_error(unit, "set properties of");
            let mut m = Manager::connect(&unit.bus).map_err(&err)?;
            let version = m.version();
            let props = properties::resource_properties(r, self.is_pure_v2(), version)?;
            if !props.is_empty() {
                let body = vec![
                    Value::str(&unit.unit),
                    Value::Bool(true),
                    property_array(props),
                ];
                m.call("SetUnitProperties", body).map_err(&err)?;
            }
        }
        self.apply_resources(r)
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod message_tests;
