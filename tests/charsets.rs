//! Keys and values in character sets other than UTF-8 (GBK, Big5, latin1/cp1252), on real
//! servers of both flavors: diagnosed as text (not hex), compared by the server in the
//! column's own character set, and repaired byte for byte (HEX() equal on both nodes).

mod support;

use std::time::Duration;

use support::*;

const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "gbk-key-1062",
        "订单-001",
        "SELECT HEX(order_no), HEX(customer), HEX(note) FROM shop_gbk.orders ORDER BY order_no",
        "王五",
    ),
    (
        "big5-key-1062",
        "訂單-001",
        "SELECT HEX(order_no), HEX(customer) FROM shop_big5.orders ORDER BY order_no",
        "王五",
    ),
    (
        "latin1-key-1062",
        "Société-€1",
        "SELECT HEX(code), HEX(name) FROM shop_latin1.clients ORDER BY code",
        "Chloé",
    ),
];

#[test]
fn non_utf8_keys_are_text_and_repaired_byte_for_byte() {
    for flavor in FLAVORS {
        for (recipe, key, hex_query, source_value) in CASES {
            let sb = incident(flavor, Topology::SourceReplica, recipe);
            let (n1, n2) = (sb.node("n1"), sb.node("n2"));
            let diag = replmend(&["diagnose", "--replica", &n2.url(), "--format", "json"]);
            assert_eq!(diag.code, 3, "{flavor} {recipe}: {}", diag.stderr);
            let j = diag.json();
            let c = &j["conflicts"][0];
            assert_eq!(
                c["key"][0]["value"], *key,
                "{flavor} {recipe}: key as text: {j}"
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
                run.code, 0,
                "{flavor} {recipe}: {}{}",
                run.stdout, run.stderr
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
