//! D-Bus messages: the header, its fields, and the body, to and from bytes.

use super::wire::{Reader, Value, Writer};
use super::DbusError;

/// The message types of the D-Bus specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MethodCall = 1,
    MethodReturn = 2,
    Error = 3,
    Signal = 4,
}

/// The largest message the specification allows (128 MiB).
const MAX_MESSAGE: usize = 128 << 20;

/// One message, with the header fields capsa uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: Kind,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

impl Message {
    /// A method call; the serial is set when it is sent.
    pub fn call(destination: &str, path: &str, interface: &str, member: &str) -> Self {
        Message {
            kind: Kind::MethodCall,
            flags: 0,
            serial: 0,
            path: Some(path.to_string()),
            interface: Some(interface.to_string()),
            member: Some(member.to_string()),
            error_name: None,
            reply_serial: None,
            destination: Some(destination.to_string()),
            sender: None,
            body: Vec::new(),
        }
    }

    /// The same message with `body` as its arguments.
    pub fn with_body(mut self, body: Vec<Value>) -> Self {
        self.body = body;
        self
    }

    /// The body's signature: every argument's, concatenated.
    pub fn signature(&self) -> String {
        self.body.iter().map(Value::signature).collect()
    }

    /// The message in wire format (little endian, protocol version 1).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::default();
        for v in &self.body {
            body.put(v);
        }
        let mut fields = Vec::new();
        let mut field = |code: u8, v: Value| {
            fields.push(Value::Struct(vec![Value::Byte(code), Value::variant(v)]));
        };
        let opt = |s: &Option<String>| s.as_deref().map(str::to_string);
        if let Some(p) = opt(&self.path) {
            field(1, Value::ObjectPath(p));
        }
        if let Some(i) = opt(&self.interface) {
            field(2, Value::Str(i));
        }
        if let Some(m) = opt(&self.member) {
            field(3, Value::Str(m));
        }
        if let Some(e) = opt(&self.error_name) {
            field(4, Value::Str(e));
        }
        if let Some(r) = self.reply_serial {
            field(5, Value::U32(r));
        }
        if let Some(d) = opt(&self.destination) {
            field(6, Value::Str(d));
        }
        if let Some(s) = opt(&self.sender) {
            field(7, Value::Str(s));
        }
        let signature = self.signature();
        if !signature.is_empty() {
            field(8, Value::Signature(signature));
        }
        let mut out = Writer::default();
        out.buf
            .extend_from_slice(&[b'l', self.kind as u8, self.flags, 1]);
        out.buf
            .extend_from_slice(&(body.buf.len() as u32).to_le_bytes());
        out.buf.extend_from_slice(&self.serial.to_le_bytes());
        out.put(&Value::Array {
            elem: "(yv)".into(),
            items: fields,
        });
        while out.buf.len() % 8 != 0 {
            out.buf.push(0);
        }
        out.buf.extend_from_slice(&body.buf);
        out.buf
    }

    /// The length of the whole message whose first 16 bytes are `start`.
    pub fn total_len(start: &[u8; 16]) -> Result<usize, DbusError> {
        if start[0] != b'l' {
            return Err(DbusError::Protocol(format!(
                "message in byte order {:?}: only little endian is supported",
                start[0] as char
            )));
        }
        let word =
            |at: usize| u32::from_le_bytes(start[at..at + 4].try_into().expect("4")) as usize;
        let fields_end = 16 + word(12);
        let total = fields_end.div_ceil(8) * 8 + word(4);
        if total > MAX_MESSAGE {
            return Err(DbusError::Protocol(format!("message of {total} bytes")));
        }
        Ok(total)
    }

    /// Parses one complete message.
    pub fn decode(bytes: &[u8]) -> Result<Message, DbusError> {
        let bad = |what: String| DbusError::Protocol(what);
        let start: &[u8; 16] = bytes
            .get(..16)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("message shorter than its header".into()))?;
        let total = Self::total_len(start)?;
        if bytes.len() != total {
            return Err(bad(format!(
                "{} bytes for a {total}-byte message",
                bytes.len()
            )));
        }
        let kind = match bytes[1] {
            1 => Kind::MethodCall,
            2 => Kind::MethodReturn,
            3 => Kind::Error,
            4 => Kind::Signal,
            other => return Err(bad(format!("unknown message type {other}"))),
        };
        let body_len = u32::from_le_bytes(bytes[4..8].try_into().expect("4")) as usize;
        let mut msg = Message {
            kind,
            flags: bytes[2],
            serial: u32::from_le_bytes(bytes[8..12].try_into().expect("4")),
            path: None,
            interface: None,
            member: None,
            error_name: None,
            reply_serial: None,
            destination: None,
            sender: None,
            body: Vec::new(),
        };
        let mut header = Reader::new(&bytes[..total - body_len]);
        // Skip the 12 fixed bytes, then read the field array.
        header.get_all("yyyyuu")?;
        let Value::Array { items, .. } = header.get("a(yv)")? else {
            unreachable!("a(yv) reads as an array")
        };
        let mut signature = String::new();
        for item in items {
            let Value::Struct(f) = item else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (f.first(), f.get(1)) else {
                continue;
            };
            let text = || v.as_str().map(str::to_string);
            match code {
                1 => msg.path = text(),
                2 => msg.interface = text(),
                3 => msg.member = text(),
                4 => msg.error_name = text(),
                5 => {
                    if let Value::U32(r) = **v {
                        msg.reply_serial = Some(r);
                    }
                }
                6 => msg.destination = text(),
                7 => msg.sender = text(),
                8 => signature = text().unwrap_or_default(),
                _ => {} // unix fds and fields of later versions
            }
        }
        let mut body = Reader::new(&bytes[total - body_len..]);
        msg.body = body.get_all(&signature)?;
        if !body.at_end() {
            return Err(bad(format!("body longer than its signature {signature:?}")));
        }
        Ok(msg)
    }

    /// The first argument as a string (an error's message, a reply's path).
    pub fn first_str(&self) -> Option<&str> {
        self.body.first().and_then(Value::as_str)
    }
}
