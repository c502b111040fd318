//! Keys and values in character sets other than UTF-8 (GBK, Big5, latin1/cp1252, Shift_JIS,
//! EUC-JP), in utf8mb3 and utf8mb4 (four-byte characters), and binary keys, on real servers
//! of both flavors: character keys diagnosed as text, binary keys as hex, compared by the
//! server in the column's own character set, and repaired byte for byte (HEX() equal on both
//! nodes).

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// How the diagnosis renders the key (`Cell` in JSON): text, or `{"hex": …}` for bytes.
enum Key {
    Text(&'static str),
    Hex(&'static str),
}

impl Key {
    fn json(&self) -> serde_json::Value {
        match self {
            Key::Text(s) => json!(s),
            Key::Hex(h) => json!({ "hex": h }),
        }
    }
}

use Key::{Hex, Text};

const CASES: &[(&str, Key, &str, &str)] = &[
    (
        "gbk-key-1062",
        Text("订单-001"),
        "SELECT HEX(order_no), HEX(customer), HEX(note) FROM shop_gbk.orders ORDER BY order_no",
        "王五",
    ),
    (
        "big5-key-1062",
        Text("訂單-001"),
        "SELECT HEX(order_no), HEX(customer) FROM shop_big5.orders ORDER BY order_no",
        "王五",
    ),
    (
        "latin1-key-1062",
        Text("Société-€1"),
        "SELECT HEX(code), HEX(name) FROM shop_latin1.clients ORDER BY code",
        "Chloé",
    ),
    (
        "sjis-key-1062",
        Text("注文-001"),
        "SELECT HEX(order_no), HEX(customer), HEX(note) FROM shop_sjis.orders ORDER BY order_no",
        "ソフト表示機能（本社）",
    ),
    (
        "ujis-key-1062",
        Text("受注-001"),
        "SELECT HEX(order_no), HEX(customer), HEX(note) FROM shop_ujis.orders ORDER BY order_no",
        "ｶﾀｶﾅ 丂 本社から",
    ),
    (
        "utf8mb3-key-1062",
        Text("Заказ-주문-001"),
        "SELECT HEX(order_no), HEX(customer), HEX(note) FROM shop_utf8mb3.orders ORDER BY order_no",
        "Ольга",
    ),
    (
        "utf8mb4-key-1062",
        Text("𠮷野家-🍜-001"),
        "SELECT HEX(order_no), HEX(customer), HEX(note) FROM shop_utf8mb4.orders ORDER BY order_no",
        "本店から 🚚",
    ),
    (
        "binary-key-1062",
        Hex("00ff8000"),
        "SELECT HEX(token), HEX(owner), HEX(secret) FROM shop_binary.tokens ORDER BY token",
        "source",
    ),
];

#[test]
fn keys_in_every_character_set_are_shown_and_repaired_byte_for_byte() {
    for flavor in FLAVORS {
        for (recipe, key, hex_query, source_value) in CASES {
            let sb = incident(flavor, Topology::SourceReplica, recipe);
            let (n1, n2) = (sb.node("n1"), sb.node("n2"));
            let diag = replmend(&["diagnose", "--replica", &n2.url(), "--format", "json"]);
            assert_eq!(
                diag.code,
                exit::REPLICATION_ERROR,
                "{flavor} {recipe}: {}",
                diag.stderr
            );
            let j = diag.json();
            let c = &j["conflicts"][0];
            assert_eq!(
                c["key"][0]["value"],
                key.json(),
                "{flavor} {recipe}: the key as text (hex if binary): {j}"
            );
            assert!(
                c["event_row"]["values"].to_string().contains(source_value),
                "{flavor} {recipe}: the event's values as text: {c}"
            );
            assert_eq!(c["verdict"]["verdict"], "differs", "{flavor} {recipe}: {c}");
            let journal = std::env::temp_dir()
                .join(format!(
                    "replmend-cs-{}-{flavor}-{recipe}.jsonl",
                    std::process::id()
                ))
                .display()
                .to_string();
            let run = replmend(&[
                "repair",
                "--replica",
                &n2.url(),
                "--yes",
                "--remedy",
                "overwrite",
                "--journal",
                &journal,
            ]);
            assert_eq!(
                run.code,
                exit::OK,
                "{flavor} {recipe}: {}{}",
                run.stdout,
                run.stderr
            );
            n2.wait_caught_up(Duration::from_secs(30)).unwrap();
            assert_eq!(
                n1.query_rows(hex_query).unwrap(),
                n2.query_rows(hex_query).unwrap(),
                "{flavor} {recipe}: the same bytes on both nodes"
            );
            assert_eq!(journaled_rows(&journal), 1, "{flavor} {recipe}");
            let _ = std::fs::remove_file(&journal);
        }
    }
}
