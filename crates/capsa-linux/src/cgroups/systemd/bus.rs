//! A small blocking D-Bus client: connect to a bus address, authenticate
//! with EXTERNAL (the kernel tells the bus our uid), say Hello, call
//! methods and collect the signals that arrive meanwhile.
//!
//! Blocking is all capsa needs: a command makes a handful of calls and
//! waits for one job. Every read has a deadline, so a bus that stops
//! answering turns into an error naming the call, never a hang.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

use super::message::{Kind, Message};
use super::wire::Value;
use super::DbusError;

/// The system bus when `DBUS_SYSTEM_BUS_ADDRESS` is not set.
pub const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// The system bus address: `$DBUS_SYSTEM_BUS_ADDRESS`, else the default.
pub fn system_bus_address() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| DEFAULT_SYSTEM_BUS.to_string())
}

/// One connection to a bus.
pub struct Bus {
    stream: UnixStream,
    address: String,
    serial: u32,
    /// Signals read while waiting for a reply, oldest first.
    signals: VecDeque<Message>,
}

impl Bus {
    /// Connects to the first usable entry of `address` (`unix:path=...` or
    /// `unix:abstract=...`, entries separated by `;`), authenticates and
    /// registers on the bus.
    pub fn connect(address: &str, timeout: Duration) -> Result<Bus, DbusError> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        for entry in address.split(';').filter(|e| !e.is_empty()) {
            match connect_entry(entry) {
                Ok(stream) => {
                    let mut bus = Bus {
                        stream,
                        address: address.to_string(),
                        serial: 0,
                        signals: VecDeque::new(),
                    };
                    bus.authenticate(deadline)?;
                    bus.call(
                        Message::call(
                            "org.freedesktop.DBus",
                            "/org/freedesktop/DBus",
                            "org.freedesktop.DBus",
                            "Hello",
                        ),
                        deadline,
                    )?;
                    return Ok(bus);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| DbusError::Address {
            address: address.to_string(),
            reason: "no unix:path= or unix:abstract= entry".into(),
        }))
    }

    /// `\0`, `AUTH EXTERNAL <uid in hex>`, expect `OK <guid>`, `BEGIN`.
    fn authenticate(&mut self, deadline: Instant) -> Result<(), DbusError> {
        let uid = nix::unistd::getuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.send_raw(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            let mut byte = [0u8; 1];
            self.read_exact_by(&mut byte, deadline, "the bus's answer to AUTH")?;
            line.push(byte[0]);
            if line.len() > 512 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&line).trim().to_string();
        if !text.starts_with("OK ") {
            return Err(DbusError::Auth {
                address: self.address.clone(),
                answer: text,
            });
        }
        self.send_raw(b"BEGIN\r\n")
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), DbusError> {
        self.stream
            .write_all(bytes)
            .map_err(|source| DbusError::Io {
                address: self.address.clone(),
                source,
            })
    }

    fn read_exact_by(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        waiting_for: &str,
    ) -> Result<(), DbusError> {
        let mut done = 0;
        while done < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DbusError::Timeout(waiting_for.to_string()));
            }
            let io = |source| DbusError::Io {
                address: self.address.clone(),
                source,
            };
            self.stream.set_read_timeout(Some(left)).map_err(io)?;
            match self.stream.read(&mut buf[done..]) {
                Ok(0) => {
                    return Err(DbusError::Io {
                        address: self.address.clone(),
                        source: ErrorKind::UnexpectedEof.into(),
                    })
                }
                Ok(n) => done += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(DbusError::Timeout(waiting_for.to_string()))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(DbusError::Io {
                        address: self.address.clone(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Reads the next message, waiting until `deadline`.
    fn read_message(&mut self, deadline: Instant, waiting_for: &str) -> Result<Message, DbusError> {
        let mut start = [0u8; 16];
        self.read_exact_by(&mut start, deadline, waiting_for)?;
        let mut bytes = start.to_vec();
        bytes.resize(Message::total_len(&start)?, 0);
        self.read_exact_by(&mut bytes[16..], deadline, waiting_for)?;
        Message::decode(&bytes)
    }

    /// Sends `msg` with the next serial; returns that serial.
    pub fn send(&mut self, mut msg: Message) -> Result<u32, DbusError> {
        self.serial += 1;
        msg.serial = self.serial;
        self.send_raw(&msg.encode())?;
        Ok(self.serial)
    }

    /// Calls a method and returns its reply's arguments. An error reply
    /// becomes [`DbusError::Remote`]. Signals read meanwhile are kept for
    /// [`Bus::next_signal`].
    pub fn call(&mut self, msg: Message, deadline: Instant) -> Result<Vec<Value>, DbusError> {
        let what = format!(
            "the reply to {}.{}",
            msg.interface.as_deref().unwrap_or_default(),
            msg.member.as_deref().unwrap_or_default()
        );
        let method = msg.member.clone().unwrap_or_default();
        let serial = self.send(msg)?;
        loop {
            let reply = self.read_message(deadline, &what)?;
            match reply.kind {
                Kind::Signal => self.signals.push_back(reply),
                _ if reply.reply_serial != Some(serial) => {}
                Kind::MethodReturn => return Ok(reply.body),
                Kind::Error => {
                    return Err(DbusError::Remote {
                        method,
                        name: reply.error_name.clone().unwrap_or_default(),
                        message: reply.first_str().unwrap_or_default().to_string(),
                    })
                }
                Kind::MethodCall => {}
            }
        }
    }

    /// The next signal: one kept by an earlier call, else the next to arrive.
    pub fn next_signal(
        &mut self,
        deadline: Instant,
        waiting_for: &str,
    ) -> Result<Message, DbusError> {
        if let Some(s) = self.signals.pop_front() {
            return Ok(s);
        }
        loop {
            let msg = self.read_message(deadline, waiting_for)?;
            if msg.kind == Kind::Signal {
                return Ok(msg);
            }
        }
    }
}

/// Connects to one `unix:` address entry.
fn connect_entry(entry: &str) -> Result<UnixStream, DbusError> {
    let bad = |reason: String| DbusError::Address {
        address: entry.to_string(),
        reason,
    };
    let Some(params) = entry.strip_prefix("unix:") else {
        return Err(bad("only unix: transports are supported".into()));
    };
    for param in params.split(',') {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let value = unescape(value).map_err(bad)?;
        let addr = match key {
            "path" => SocketAddr::from_pathname(&value),
            "abstract" => SocketAddr::from_abstract_name(value.as_bytes()),
            _ => continue,
        }
        .map_err(|e| bad(e.to_string()))?;
        return UnixStream::connect_addr(&addr).map_err(|source| DbusError::Connect {
            address: entry.to_string(),
            source,
        });
    }
    Err(bad("no path= or abstract= key".into()))
}

/// D-Bus addresses escape bytes as `%xx`.
fn unescape(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in {value:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{value:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_addresses() {
        assert_eq!(unescape("/run/a%20b").unwrap(), "/run/a b");
        assert!(unescape("/run/%zz").is_err());
    }

    #[test]
    fn refuses_transports_other_than_unix() {
        let e = connect_entry("tcp:host=localhost,port=1").unwrap_err();
        assert!(e.to_string().contains("only unix:"), "{e}");
    }

    #[test]
    fn a_missing_socket_is_a_connect_error_naming_it() {
        let e = Bus::connect("unix:path=/nonexistent/sd-bus", Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/sd-bus"), "{e}");
    }
}
