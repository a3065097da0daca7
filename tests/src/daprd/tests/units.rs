//! Unit tests of the pure parts: Go JSON rules, CEL subset, response tables, helpers.

use super::super::api::{parse_query, query_unescape};
use super::super::app::clean_path;
use super::super::broker::partition_for;
use super::super::deliver::classify;
use super::super::gojson::{
    self, DecodeError, GoValue, decode_first, format_go_float, marshal, unmarshal,
};
use super::super::journal::Outcome;
use super::super::{bulk_reply, cel, subscribe};

#[test]
fn go_decoder_reads_the_first_value_and_unmarshal_the_whole_input() {
    assert_eq!(decode_first(b"  "), Err(DecodeError::Eof));
    assert!(matches!(
        decode_first(br#"{"a":1} trailing"#),
        Ok(GoValue::Map(_))
    ));
    assert!(matches!(decode_first(b"123abc"), Ok(GoValue::Number(n)) if n == "123"));
    assert!(unmarshal(br#"{"a":1} x"#).is_err());
    assert!(
        unmarshal(b"{\"a\":\"\x01\"}").is_err(),
        "raw control characters are invalid"
    );
    assert!(decode_first(b"[1,]").is_err());
    assert!(decode_first(b"01").is_ok_and(|v| v == GoValue::Number("0".into())));
}

#[test]
fn go_marshal_sorts_keys_escapes_html_and_keeps_digits() {
    let v = decode_first(br#"{"b":1.50,"a":{"z":"<&>","y":12345678901234567890},"b":2}"#).unwrap();
    assert_eq!(
        String::from_utf8(marshal(&v)).unwrap(),
        r#"{"a":{"y":12345678901234567890,"z":"\u003c\u0026\u003e"},"b":2}"#
    );
    let s = decode_first(br#""\ud83d\ude00 \ud800 \b\f\u2028""#).unwrap();
    assert_eq!(
        String::from_utf8(marshal(&s)).unwrap(),
        "\"😀 \u{fffd} \\b\\f\\u2028\""
    );
}

#[test]
fn go_floats_format_like_encoding_json() {
    assert_eq!(format_go_float(1.0), "1");
    assert_eq!(format_go_float(1e21), "1e+21");
    assert_eq!(format_go_float(1.5e-7), "1.5e-7");
    assert_eq!(format_go_float(0.000001), "0.000001");
    assert_eq!(
        format_go_float(12345678901234567890.0),
        "12345678901234567000"
    );
    let v = gojson::to_float64_numbers(&decode_first(b"[1.0, 2.50, 1e400]").unwrap());
    assert!(v.is_err(), "Go refuses numbers that overflow float64");
}

#[test]
fn go_fields_match_case_insensitively_and_last_key_wins() {
    let GoValue::Map(p) =
        decode_first(br#"{"PubSubName":"a","pubsubname":"b","Topic":null}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(gojson::string_field(&p, "pubsubname").unwrap(), "b");
    assert_eq!(gojson::string_field(&p, "topic").unwrap(), "");
    let GoValue::Map(p) = decode_first(br#"{"\u017ftatus":"X"}"#).unwrap() else {
        panic!()
    };
    assert_eq!(
        gojson::string_field(&p, "status").unwrap(),
        "X",
        "Go folds U+017F to S"
    );
    let GoValue::Map(p) = decode_first(br#"{"n":1.5}"#).unwrap() else {
        panic!()
    };
    assert!(gojson::i32_field(&p, "n").is_err());
}

#[test]
fn single_delivery_response_table() {
    let ok = [
        (200, ""),
        (200, "not json"),
        (200, "[]"),
        (200, "null"),
        (200, "{}"),
        (200, r#"{"status":""}"#),
        (200, r#"{"status":5}"#),
        (200, r#"{"status":5,"status":"RETRY"}"#),
        (204, ""),
        (201, r#"{"status":"SUCCESS"}"#),
        (200, r#"{"other":"DROP"}"#),
    ];
    for (status, body) in ok {
        assert_eq!(
            classify(status, body.as_bytes()),
            Outcome::Success,
            "{status} {body}"
        );
    }
    assert!(matches!(
        classify(200, br#"{"status":"RETRY"}"#),
        Outcome::Retry(_)
    ));
    assert!(
        matches!(classify(200, br#"{"status":"success"}"#), Outcome::Retry(_)),
        "case-sensitive"
    );
    assert!(matches!(
        classify(200, br#"{"status":"Drop"}"#),
        Outcome::Retry(_)
    ));
    assert_eq!(
        classify(200, br#"{"Status":"DROP"}"#),
        Outcome::Drop,
        "key is case-insensitive"
    );
    assert_eq!(classify(200, br#"{"status":"DROP"} junk"#), Outcome::Drop);
    assert_eq!(classify(404, br#"{"status":"SUCCESS"}"#), Outcome::Drop);
    for status in [100, 301, 302, 400, 401, 409, 429, 500, 503] {
        assert!(
            matches!(classify(status, b""), Outcome::Retry(_)),
            "{status}"
        );
    }
}

#[test]
fn bulk_response_table() {
    let ids = ["0", "1", "2"];
    let v = bulk_reply::classify(
        200,
        br#"{"statuses":[{"entryId":"0","status":"SUCCESS"},{"entryId":"1","status":"DROP"},{"entryId":"9","status":"SUCCESS"}]}"#,
        &ids,
    );
    assert_eq!(v[0], Outcome::Success);
    assert_eq!(v[1], Outcome::Drop);
    assert!(
        matches!(v[2], Outcome::Retry(_)),
        "a missing entry is RETRY"
    );
    for body in [
        "",
        "junk",
        r#"{"statuses":"x"}"#,
        r#"{"statuses":[{"entryId":0}]}"#,
    ] {
        let v = bulk_reply::classify(200, body.as_bytes(), &ids);
        assert!(v.iter().all(|o| matches!(o, Outcome::Retry(_))), "{body:?}");
    }
    let v = bulk_reply::classify(
        200,
        br#"{"statuses":[{"entryId":"0","status":""},{"entryId":"1","status":"success"}]}"#,
        &ids,
    );
    assert!(v.iter().all(|o| matches!(o, Outcome::Retry(_))));
    assert!(
        bulk_reply::classify(404, b"", &ids)
            .iter()
            .all(|o| *o == Outcome::Drop)
    );
    assert!(
        bulk_reply::classify(500, b"", &ids)
            .iter()
            .all(|o| matches!(o, Outcome::Retry(_)))
    );
}

#[test]
fn cel_subset_routes_and_fails_like_cel() {
    let ev = decode_first(br#"{"type":"task.completed","data":{"n":3,"tags":["a"]}}"#).unwrap();
    let t = |src: &str| cel::eval_bool(&cel::compile(src).unwrap(), &ev);
    assert_eq!(t(r#"event.type == "task.completed""#), Ok(true));
    assert_eq!(t(r#"event.type == 'x' || event.data.n >= 3"#), Ok(true));
    assert_eq!(
        t(r#"event.data.n == 3 && !(event.type in ["a", "b"])"#),
        Ok(true)
    );
    assert_eq!(
        t(r#"event.type.startsWith("task.") && has(event.data.tags)"#),
        Ok(true)
    );
    assert_eq!(t(r#"event["type"] != "task.completed""#), Ok(false));
    assert!(t("event.missing == 1").is_err(), "no such key");
    assert!(
        t("other.x == 1").is_err(),
        "undeclared identifiers fail at evaluation"
    );
    assert!(t("event.type").is_err(), "a non-bool result is an error");
    assert!(cel::compile("event.type ==").is_err());
    assert!(cel::compile("event.type == \"x").is_err());
}

#[test]
fn subscription_bodies_decode_like_go() {
    let subs = subscribe::decode(
        br#"[{"pubsubName":"ps","TOPIC":"t","routes":{"rules":[{"match":" event.type == \"a\" ","path":"/a"},{"match":"","path":"x"}],"default":"/d"},
             "route":"/ignored","deadLetterTopic":"dlq","metadata":{"rawPayload":"true"},"bulkSubscribe":{"enabled":true,"maxMessagesCount":5},"unknown":1},
            {"pubsubname":"ps","topic":"no-routes"}]"#,
    )
    .unwrap();
    assert_eq!(subs.len(), 1, "a subscription without routes is dropped");
    let s = &subs[0];
    assert_eq!((s.pubsubname.as_str(), s.topic.as_str()), ("ps", "t"));
    let paths: Vec<_> = s
        .rules
        .iter()
        .map(|r| (r.match_expr.as_deref(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            (Some(r#"event.type == "a""#), "/a"),
            (None, "x"),
            (None, "/d")
        ]
    );
    assert_eq!(s.dead_letter_topic.as_deref(), Some("dlq"));
    assert_eq!(s.raw_payload(), Ok(true));
    assert!(s.bulk_subscribe.enabled && s.bulk_subscribe.max_messages_count == 5);
    assert_eq!(subscribe::decode(b"").unwrap(), vec![]);
    assert_eq!(subscribe::decode(b"null").unwrap(), vec![]);
    for bad in [
        r#"{"pubsubname":"ps"}"#,
        r#"[{"pubsubname":"ps","topic":"t","route":"/r","metadata":{"rawPayload":true}}]"#,
        r#"[{"pubsubname":"ps","topic":7,"route":"/r"}]"#,
        r#"[{"pubsubname":"ps","topic":"t","routes":{"rules":[{"match":"event.type ==","path":"/a"}]}}]"#,
        r#"[{"pubsubname":"ps","topic":"t","route":"/r","bulkSubscribe":{"enabled":"true"}}]"#,
        "[",
    ] {
        assert!(subscribe::decode(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn helpers_follow_go() {
    assert_eq!(clean_path("orders"), "/orders");
    assert_eq!(clean_path("/a//b/../c/"), "/a/c");
    assert_eq!(clean_path(""), "/");
    assert_eq!(query_unescape("a+b%2Fc").as_deref(), Some("a b/c"));
    assert_eq!(query_unescape("%zz"), None);
    assert_eq!(
        parse_query("metadata.partitionKey=u1&metadata.partitionKey=u2&bad=%zz&x"),
        vec![
            ("metadata.partitionKey".into(), "u1".into()),
            ("metadata.partitionKey".into(), "u2".into()),
            ("x".into(), "".into())
        ]
    );
    // sarama's hash partitioner is deterministic per key and in range.
    for k in ["user-1", "user-2", "", "ünïcode"] {
        let p = partition_for(Some(k), 3);
        assert!(p < 3 && p == partition_for(Some(k), 3));
    }
    assert_eq!(partition_for(Some("anything"), 1), 0);
}
