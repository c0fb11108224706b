use super::*;

fn point(line: &str) -> Point {
    parse_line(line.as_bytes())
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .unwrap_or_else(|| panic!("{line}: no point"))
}

fn error(line: &str) -> SyntaxError {
    match parse_line(line.as_bytes()) {
        Err(e) => e,
        Ok(p) => panic!("{line} parsed as {p:?}"),
    }
}

#[test]
fn reads_the_reference_example() {
    let p =
        point(r#"myMeasurement,tag1=value1,tag2=value2 fieldKey="fieldValue" 1556813561098000000"#);
    assert_eq!(p.measurement, "myMeasurement");
    assert_eq!(
        p.tags,
        vec![
            ("tag1".into(), "value1".into()),
            ("tag2".into(), "value2".into())
        ]
    );
    assert_eq!(
        p.fields,
        vec![("fieldKey".into(), FieldValue::String("fieldValue".into()))]
    );
    assert_eq!(p.timestamp, Some(1_556_813_561_098_000_000));
    assert_eq!(p.tag("tag2"), Some("value2"));
}

#[test]
fn a_point_needs_no_tags_and_no_timestamp() {
    let p = point("m v=1");
    assert!(p.tags.is_empty());
    assert_eq!(p.fields, vec![("v".into(), FieldValue::Float(1.0))]);
    assert_eq!(p.timestamp, None);
}

#[test]
fn every_field_type_is_read() {
    let p = point(
        r#"m a=1.5,b=-1.234456e+78,c=12485903i,d=-12485903i,e=18446744073709551615u,f=t,g=FALSE,h="x",i=1,j=.5"#,
    );
    let values: Vec<_> = p.fields.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        vec![
            FieldValue::Float(1.5),
            FieldValue::Float(-1.234456e78),
            FieldValue::Integer(12_485_903),
            FieldValue::Integer(-12_485_903),
            FieldValue::Unsigned(u64::MAX),
            FieldValue::Boolean(true),
            FieldValue::Boolean(false),
            FieldValue::String("x".into()),
            FieldValue::Float(1.0),
            FieldValue::Float(0.5),
        ]
    );
    for (raw, expected) in [
        ("t", true),
        ("T", true),
        ("true", true),
        ("True", true),
        ("TRUE", true),
        ("f", false),
        ("F", false),
        ("false", false),
        ("False", false),
        ("FALSE", false),
    ] {
        let p = point(&format!("m b={raw}"));
        assert_eq!(p.fields[0].1, FieldValue::Boolean(expected), "{raw}");
    }
    assert_eq!(
        point("m x=-9223372036854775808i").fields[0].1,
        FieldValue::Integer(i64::MIN)
    );
}

#[test]
fn the_measurement_unescapes_commas_and_spaces_only() {
    assert_eq!(point(r"my\ Measurement v=1").measurement, "my Measurement");
    assert_eq!(point(r"a\,b v=1").measurement, "a,b");
    assert_eq!(point(r"a\=b v=1").measurement, r"a\=b");
    assert_eq!(point(r"a=b v=1").measurement, "a=b");
    assert_eq!(point(r"a\\b v=1").measurement, r"a\\b");
    assert_eq!(point(r"a\b v=1").measurement, r"a\b");
    assert_eq!(point(r"a\\ b v=1").measurement, r"a\ b");
}

#[test]
fn tag_keys_and_values_unescape_commas_equals_signs_and_spaces() {
    let p = point(r"m,tag\ Key1=tag\ Value1,k\,2=v\=2,k\=3=a\,b v=1");
    assert_eq!(
        p.tags,
        vec![
            ("tag Key1".into(), "tag Value1".into()),
            ("k,2".into(), "v=2".into()),
            ("k=3".into(), "a,b".into()),
        ]
    );
    // Emoji and Vietnamese need no escaping.
    let p = point("m,tagKey=🍭,phường=Bến\\ Thành v=1");
    assert_eq!(p.tag("tagKey"), Some("🍭"));
    assert_eq!(p.tag("phường"), Some("Bến Thành"));
    // A Windows path from Telegraf: `\\` is two backslashes, the second escaping the space.
    assert_eq!(
        point(r"cpu,host=two\\ words value=42").tag("host"),
        Some(r"two\ words")
    );
    assert_eq!(
        point(r"cpu,host=two\\\ words value=42").tag("host"),
        Some(r"two\\ words")
    );
    assert_eq!(
        point(r"cpu,reg\\=ion=east value=1.0").tags,
        vec![(r"reg\=ion".into(), "east".into())]
    );
}

#[test]
fn backslashes_follow_the_reference_table() {
    // influxdata/line-protocol `takeEsc`: only `,`, `=` and space are escaped in a tag value; a
    // backslash before anything else stays, and what follows it is read on its own.
    for (written, read) in [
        (r"a\b", r"a\b"),
        (r"a\\b", r"a\\b"),
        (r"a\\\b", r"a\\\b"),
        (r"a\ b", "a b"),
        (r"a\\ b", r"a\ b"),
        (r"a\\\ b", r"a\\ b"),
        (r"a\\\\ b", r"a\\\ b"),
        (r"a\,b", "a,b"),
        (r"a\\,b", r"a\,b"),
        (r"a\=b", "a=b"),
        (r"a\\=b", r"a\=b"),
        (r"a\tb", r"a\tb"),
    ] {
        let p = point(&format!("m,k={written} v=1"));
        assert_eq!(p.tag("k"), Some(read), "{written}");
    }
}

#[test]
fn field_keys_unescape_like_tag_keys() {
    let p = point(r"m field\ key=1,a\,b=2,c\=d=3");
    let keys: Vec<_> = p.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["field key", "a,b", "c=d"]);
}

#[test]
fn string_values_unescape_quotes_backslashes_and_control_letters_and_keep_the_rest() {
    let p =
        point(r#"m s="\"string\" within a string",t="a,b c=d",u="back\\slash",w="lone\slash" 5"#);
    let values: Vec<_> = p.fields.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        vec![
            FieldValue::String("\"string\" within a string".into()),
            FieldValue::String("a,b c=d".into()),
            FieldValue::String(r"back\slash".into()),
            FieldValue::String(r"lone\slash".into()),
        ]
    );
    // `fieldStringValEscapes`: `\n`, `\r` and `\t` are a line feed, a carriage return and a tab.
    assert_eq!(
        point(r#"m s="a\nb\r\tc\\n\x""#).fields[0].1,
        FieldValue::String("a\nb\r\tc\\n\\x".into())
    );
    // A raw tab or control character is allowed inside a string, as in the reference.
    assert_eq!(
        point("m s=\"a\tb\x01\"").fields[0].1,
        FieldValue::String("a\tb\x01".into())
    );
    assert_eq!(
        point(r#"m s="🚀 Launch""#).fields[0].1,
        FieldValue::String("🚀 Launch".into())
    );
}

#[test]
fn blank_lines_comments_spaces_and_carriage_returns_are_tolerated() {
    assert_eq!(parse_line(b"").unwrap(), None);
    assert_eq!(parse_line(b"    ").unwrap(), None);
    assert_eq!(parse_line(b"# a comment, with=anything 1").unwrap(), None);
    assert_eq!(parse_line(b"  # indented comment").unwrap(), None);
    let p = point("  m,k=v  v=1   42  \r");
    assert_eq!(p.timestamp, Some(42));
    assert_eq!(point("m v=1 -5").timestamp, Some(-5));
}

#[test]
fn malformed_lines_say_what_is_wrong() {
    for (line, expected) in [
        ("m", SyntaxError::MissingFields),
        ("m ", SyntaxError::MissingFields),
        ("m,k=v", SyntaxError::MissingFields),
        (",k=v v=1", SyntaxError::MissingMeasurement),
        (" v=1", SyntaxError::MissingFields),
        ("m,k v=1", SyntaxError::TagWithoutValue("k".into())),
        ("m,=v v=1", SyntaxError::EmptyTagKey),
        ("m,k= v=1", SyntaxError::EmptyTagValue("k".into())),
        ("m,k=a,k=b v=1", SyntaxError::DuplicateTag("k".into())),
        ("m v", SyntaxError::FieldWithoutValue("v".into())),
        ("m =1", SyntaxError::EmptyFieldKey),
        ("m v=", SyntaxError::EmptyFieldValue("v".into())),
        ("m v=1,v=2", SyntaxError::DuplicateField("v".into())),
        ("m v=1,", SyntaxError::EmptyFieldKey),
        ("m v=\"open", SyntaxError::UnterminatedString("v".into())),
        ("m v=1 12:00", SyntaxError::InvalidTimestamp("12:00".into())),
        ("m v=1 1.5", SyntaxError::InvalidTimestamp("1.5".into())),
        (
            "m v=1 99999999999999999999",
            SyntaxError::InvalidTimestamp("99999999999999999999".into()),
        ),
        ("m v=1 1 2", SyntaxError::TrailingText("2".into())),
        ("m v=\"a\"b", SyntaxError::TrailingText("b".into())),
        ("m,k=a=b v=1", SyntaxError::UnescapedEquals("k".into())),
        ("_m v=1", SyntaxError::ReservedName("_m".into())),
        ("m,_k=v v=1", SyntaxError::ReservedName("_k".into())),
        ("m _v=1", SyntaxError::ReservedName("_v".into())),
    ] {
        assert_eq!(error(line), expected, "{line}");
    }
}

#[test]
fn field_values_outside_the_grammar_or_range_are_refused() {
    for raw in [
        "abc", "1.2.3", "inf", "NaN", "Infinity", "1x", "i", "u", "1.5i", "-1u", "--1i", "yes",
        "+1", "+1i", "+.5",
    ] {
        let e = error(&format!("m v={raw}"));
        assert!(
            matches!(e, SyntaxError::InvalidFieldValue { .. }),
            "{raw}: {e:?}"
        );
    }
    for raw in ["9223372036854775808i", "18446744073709551616u", "1e999"] {
        let e = error(&format!("m v={raw}"));
        assert!(
            matches!(e, SyntaxError::FieldValueOutOfRange { .. }),
            "{raw}: {e:?}"
        );
    }
}

#[test]
fn control_characters_and_a_leading_tab_are_refused_outside_strings() {
    for (line, code) in [
        ("\tm v=1", 0x09),
        ("  \tm v=1", 0x09),
        ("\t", 0x09),
        ("m\x0b2=1", 0x0b),
        ("m\tx v=1", 0x09),
        ("m,k\x01=v v=1", 0x01),
        ("m,k=v\x1f v=1", 0x1f),
        ("m v\x7f=1", 0x7f),
        ("m,k=a\\\tb v=1", 0x09),
        ("# a comment with a \x07 bell", 0x07),
    ] {
        assert_eq!(error(line), SyntaxError::ControlCharacter(code), "{line:?}");
    }
}

#[test]
fn long_strings_and_invalid_utf8_are_refused() {
    let long = format!("m v=\"{}\"", "x".repeat(MAX_STRING_BYTES + 1));
    assert_eq!(error(&long), SyntaxError::StringTooLong("v".into()));
    assert_eq!(parse_line(b"m\xff v=1"), Err(SyntaxError::InvalidUtf8));
    assert_eq!(parse_line(b"m v=\"\xff\""), Err(SyntaxError::InvalidUtf8));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: every prefix of tricky lines, and shuffled byte soup.
    let samples: [&[u8]; 6] = [
        br#"m\,x,k\ 1=v\=1,k2=\\ f1="a\"b\\",f2=1i,f3=2u,f4=t 123"#,
        b"\\\\\\,=\" \"\\",
        b"m,k=\\",
        b"m v=\"\\",
        b",,,=== \"\"\" ",
        b"m v=1 -",
    ];
    for sample in samples {
        for end in 0..=sample.len() {
            let _ = parse_line(&sample[..end]);
        }
    }
    let mut state: u32 = 0x2026_0315;
    for _ in 0..2000 {
        let mut line = Vec::new();
        for _ in 0..24 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            line.push(b"m,k= v=\"\\1iu.e-#t\xff"[(state >> 16) as usize % 18]);
        }
        let _ = parse_line(&line);
    }
}

#[test]
fn a_line_of_many_keys_is_read_whole_and_a_late_duplicate_still_found() {
    let fields: Vec<String> = (0..50_000).map(|i| format!("f{i}={i}i")).collect();
    let tags: Vec<String> = (0..50_000).map(|i| format!("t{i}=v")).collect();
    let line = format!("m,{} {}", tags.join(","), fields.join(","));
    let parsed = point(&line);
    assert_eq!((parsed.tags.len(), parsed.fields.len()), (50_000, 50_000));
    assert_eq!(
        error(&format!("m {},f7=1i", fields.join(","))),
        SyntaxError::DuplicateField("f7".into())
    );
    assert_eq!(
        error(&format!("m,{},t9=w v=1", tags.join(","))),
        SyntaxError::DuplicateTag("t9".into())
    );
}
