use super::*;

fn encode(v: &Value) -> Vec<u8> {
    let mut w = Writer::default();
    w.put(v);
    w.buf
}

fn round_trip(v: Value) {
    let bytes = encode(&v);
    let got = Reader::new(&bytes).get(&v.signature()).unwrap();
    assert_eq!(got, v);
}

#[test]
fn signatures() {
    let props = Value::Array {
        elem: "(sv)".into(),
        items: vec![],
    };
    assert_eq!(props.signature(), "a(sv)");
    assert_eq!(
        Value::Struct(vec![Value::str("a"), props.clone()]).signature(),
        "(sa(sv))"
    );
    assert_eq!(Value::variant(Value::U64(1)).signature(), "v");
    assert_eq!(split_type("a(sa(sv))s").unwrap(), ("a(sa(sv))", "s"));
    assert_eq!(split_type("a{sv}u").unwrap(), ("a{sv}", "u"));
    assert_eq!(split_type("uoss").unwrap(), ("u", "oss"));
    assert!(split_type("a(s").is_err());
    assert!(split_type("z").is_err());
}

#[test]
fn basic_values_are_aligned_and_little_endian() {
    assert_eq!(encode(&Value::Bool(true)), [1, 0, 0, 0]);
    assert_eq!(encode(&Value::str("ab")), [2, 0, 0, 0, b'a', b'b', 0]);
    assert_eq!(encode(&Value::Signature("au".into())), [2, b'a', b'u', 0]);
    // A struct starts 8-aligned: a byte then a u64 pads 7 bytes.
    assert_eq!(
        encode(&Value::Struct(vec![Value::Byte(9), Value::U64(2)])),
        [9, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
    );
    // A variant: its signature, then the value aligned as itself.
    assert_eq!(
        encode(&Value::variant(Value::U32(5))),
        [1, b'u', 0, 0, 5, 0, 0, 0]
    );
}

#[test]
fn an_empty_array_of_structs_pads_to_8_but_counts_0() {
    let v = Value::Array {
        elem: "(sv)".into(),
        items: vec![],
    };
    assert_eq!(encode(&v), [0, 0, 0, 0, 0, 0, 0, 0]);
    round_trip(v);
}

#[test]
fn byte_and_u32_arrays() {
    let ay = Value::Array {
        elem: "y".into(),
        items: vec![Value::Byte(0x0f), Value::Byte(0x01)],
    };
    assert_eq!(encode(&ay), [2, 0, 0, 0, 0x0f, 0x01]);
    let au = Value::Array {
        elem: "u".into(),
        items: vec![Value::U32(7), Value::U32(8)],
    };
    assert_eq!(encode(&au), [8, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0]);
}

#[test]
fn nested_values_round_trip() {
    round_trip(Value::Array {
        elem: "(sv)".into(),
        items: vec![
            Value::Struct(vec![
                Value::str("Delegate"),
                Value::variant(Value::Bool(true)),
            ]),
            Value::Struct(vec![
                Value::str("PIDs"),
                Value::variant(Value::Array {
                    elem: "u".into(),
                    items: vec![Value::U32(1)],
                }),
            ]),
            Value::Struct(vec![
                Value::str("TasksMax"),
                Value::variant(Value::U64(u64::MAX)),
            ]),
        ],
    });
    round_trip(Value::Array {
        elem: "{sv}".into(),
        items: vec![Value::DictEntry(
            Box::new(Value::str("k")),
            Box::new(Value::variant(Value::I64(-3))),
        )],
    });
    round_trip(Value::Struct(vec![
        Value::I16(-2),
        Value::U16(3),
        Value::I32(-4),
        Value::ObjectPath("/a".into()),
    ]));
}

#[test]
fn truncated_input_is_an_error_not_a_panic() {
    let bytes = encode(&Value::str("hello"));
    for cut in 0..bytes.len() {
        assert!(Reader::new(&bytes[..cut]).get("s").is_err(), "cut at {cut}");
    }
    // An array claiming more bytes than there are.
    assert!(Reader::new(&[200, 0, 0, 0, 1]).get("ay").is_err());
}
