//! The D-Bus wire format, as much of it as talking to systemd needs:
//! messages in little-endian byte order, and values of the basic types
//! (`y b n q i u x t s o g`), arrays, structs, dict entries and variants.
//! No unix fds.
//!
//! A message is a fixed 12-byte start (endianness, type, flags, version,
//! body length, serial), an array of header fields `a(yv)`, padding to 8,
//! then the body. Every value is aligned to its type's alignment counted
//! from the start of the message; the body starts 8-aligned, so counting
//! from the body gives the same padding.

use super::DbusError;

/// A D-Bus value. Arrays carry their element signature so that an empty
/// array still has a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    Array { elem: String, items: Vec<Value> },
    Struct(Vec<Value>),
    DictEntry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// Shorthand for a string.
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    /// A variant holding `v`.
    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    /// The value's type signature, such as `a(sv)`.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::ObjectPath(_) => "o".into(),
            Value::Signature(_) => "g".into(),
            Value::Array { elem, .. } => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::DictEntry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            Value::Variant(_) => "v".into(),
        }
    }

    /// The string inside a `s`, `o` or `g` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }
}

/// Alignment of the type whose signature starts with `code`.
fn alignment(code: u8) -> usize {
    match code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

/// Appends values to a buffer whose offset 0 is 8-aligned.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32_at(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32_at(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// Writes one value, aligned.
    pub fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32_at(u32::from(*b)),
            Value::I16(n) => {
                self.pad(2);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U16(n) => {
                self.pad(2);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::I32(n) => {
                self.pad(4);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U32(n) => self.u32_at(*n),
            Value::I64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Str(s) | Value::ObjectPath(s) => self.string(s),
            Value::Signature(s) => self.signature(s),
            Value::Array { elem, items } => {
                self.u32_at(0);
                let len_at = self.buf.len() - 4;
                // The length counts the elements, not the padding before
                // the first one (which is there even for an empty array).
                self.pad(alignment(elem.as_bytes()[0]));
                let start = self.buf.len();
                for item in items {
                    self.put(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.put(f);
                }
            }
            Value::DictEntry(k, v) => {
                self.pad(8);
                self.put(k);
                self.put(v);
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature());
                self.put(inner);
            }
        }
    }
}

/// Reads values from a buffer whose offset 0 is 8-aligned.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The first complete type of `sig` and the rest.
pub fn split_type(sig: &str) -> Result<(&str, &str), DbusError> {
    let bad = || DbusError::Protocol(format!("bad signature {sig:?}"));
    let bytes = sig.as_bytes();
    let mut end = 0;
    // Skip array prefixes, then one basic type or a bracketed group.
    while bytes.get(end) == Some(&b'a') {
        end += 1;
    }
    match bytes.get(end).ok_or_else(bad)? {
        b'(' | b'{' => {
            let mut depth = 0usize;
            loop {
                match bytes.get(end).ok_or_else(bad)? {
                    b'(' | b'{' => depth += 1,
                    b')' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                end += 1;
            }
        }
        c if b"ybnqiuxtsogvh".contains(c) => {}
        _ => return Err(bad()),
    }
    Ok(sig.split_at(end + 1))
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn short(&self) -> DbusError {
        DbusError::Protocol(format!("message truncated at byte {}", self.pos))
    }

    fn align(&mut self, align: usize) -> Result<(), DbusError> {
        let next = self.pos.div_ceil(align) * align;
        if next > self.buf.len() {
            return Err(self.short());
        }
        self.pos = next;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DbusError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| self.short())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DbusError> {
        self.align(N)?;
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn text(&mut self, len: usize) -> Result<String, DbusError> {
        let bytes = self.take(len + 1)?;
        String::from_utf8(bytes[..len].to_vec())
            .map_err(|_| DbusError::Protocol("a string is not UTF-8".into()))
    }

    /// Whether everything has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads every value of the signature `sig`.
    pub fn get_all(&mut self, mut sig: &str) -> Result<Vec<Value>, DbusError> {
        let mut out = Vec::new();
        while !sig.is_empty() {
            let (one, rest) = split_type(sig)?;
            out.push(self.get(one)?);
            sig = rest;
        }
        Ok(out)
    }

    /// Reads one value of the single complete type `sig`.
    pub fn get(&mut self, sig: &str) -> Result<Value, DbusError> {
        let code = sig.as_bytes()[0];
        Ok(match code {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(u32::from_le_bytes(self.fixed()?) != 0),
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' | b'h' => Value::U32(u32::from_le_bytes(self.fixed()?)),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b's' | b'o' => {
                let len = u32::from_le_bytes(self.fixed()?) as usize;
                let s = self.text(len)?;
                if code == b's' {
                    Value::Str(s)
                } else {
                    Value::ObjectPath(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Signature(self.text(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.text(len)?;
                let (one, rest) = split_type(&inner)?;
                if !rest.is_empty() {
                    return Err(DbusError::Protocol(format!(
                        "variant signature {inner:?} is not a single type"
                    )));
                }
                Value::variant(self.get(one)?)
            }
            b'a' => {
                let len = u32::from_le_bytes(self.fixed()?) as usize;
                let elem = &sig[1..];
                self.align(alignment(elem.as_bytes()[0]))?;
                let end = self.pos + len;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.get(elem)?);
                }
                if self.pos != end {
                    return Err(DbusError::Protocol("array length mismatch".into()));
                }
                Value::Array {
                    elem: elem.to_string(),
                    items,
                }
            }
            b'(' => {
                self.align(8)?;
                Value::Struct(self.get_all(&sig[1..sig.len() - 1])?)
            }
            b'{' => {
                self.align(8)?;
                let mut kv = self.get_all(&sig[1..sig.len() - 1])?.into_iter();
                match (kv.next(), kv.next(), kv.next()) {
                    (Some(k), Some(v), None) => Value::DictEntry(Box::new(k), Box::new(v)),
                    _ => return Err(DbusError::Protocol(format!("bad dict entry {sig:?}"))),
                }
            }
            _ => return Err(DbusError::Protocol(format!("bad signature {sig:?}"))),
        })
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
