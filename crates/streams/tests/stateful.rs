//! Aggregations, tables, joins and restore, run with the deterministic driver.

use fjord_streams::{
    Changelogs, JoinWindows, Materialized, StreamsBuilder, TestRecord, TopologyTestDriver,
};
use std::time::Duration;

type R = fjord_streams::Result<()>;

fn s(x: &str) -> String {
    x.to_string()
}

fn kv(k: &str, v: i64) -> (String, i64) {
    (s(k), v)
}

fn word_count() -> StreamsBuilder {
    let b = StreamsBuilder::new();
    b.stream::<(), String>("lines")
        .flat_map_values(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .group_by(|_, w| w.clone())
        .count("counts")
        .to_stream()
        .to("out");
    b
}

#[test]
fn group_by_count_repartitions_and_counts_exactly() -> R {
    let mut d = TopologyTestDriver::new(word_count().build()?)?;
    d.pipe("lines", (), s("a b a"), 1)?;
    d.pipe("lines", (), s("b"), 2)?;
    assert_eq!(
        d.read_output::<String, i64>("out")?,
        vec![kv("a", 1), kv("b", 1), kv("a", 2), kv("b", 2)]
    );
    let store = d.key_value_store::<String, i64>("counts");
    assert_eq!(store.all()?, vec![kv("a", 2), kv("b", 2)]);
    assert!(d
        .output_topics()
        .contains(&s("test-app-counts-repartition")));
    // Every count update went to the compacted changelog.
    assert_eq!(d.changelogs()["counts"].len(), 4);
    Ok(())
}

#[test]
fn group_by_key_without_key_change_does_not_repartition() -> R {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("in")
        .group_by_key()
        .reduce(|a, v| a + v, "sums")
        .to_stream()
        .to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("in", s("x"), 5i64, 1)?;
    d.pipe("in", s("x"), 7i64, 2)?;
    d.pipe("in", s("y"), 1i64, 3)?;
    assert_eq!(
        d.read_output::<String, i64>("out")?,
        vec![kv("x", 5), kv("x", 12), kv("y", 1)]
    );
    assert!(!d
        .output_topics()
        .iter()
        .any(|t| t.ends_with("-repartition")));
    Ok(())
}

#[test]
fn aggregate_with_initializer() -> R {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .group_by_key()
        .aggregate(
            String::new,
            |_, v, agg| format!("{agg}{v}"),
            Materialized::as_("concat").in_memory(),
        )
        .to_stream()
        .to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("in", s("k"), s("x"), 1)?;
    d.pipe("in", s("k"), s("y"), 2)?;
    assert_eq!(
        d.read_output::<String, String>("out")?,
        vec![(s("k"), s("x")), (s("k"), s("xy"))]
    );
    Ok(())
}

#[test]
fn aggregations_skip_null_values_and_keys() -> R {
    let b = StreamsBuilder::new();
    b.stream::<Option<String>, Option<String>>("in")
        .group_by_key()
        .count("c")
        .to_stream()
        .to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("in", Some(s("k")), None::<String>, 1)?;
    d.pipe("in", None::<String>, Some(s("v")), 1)?;
    d.pipe("in", Some(s("k")), Some(s("v")), 1)?;
    assert_eq!(d.read_output::<String, i64>("out")?, vec![kv("k", 1)]);
    Ok(())
}

#[test]
fn table_source_filter_map_values_and_tombstones() -> R {
    let b = StreamsBuilder::new();
    let t = b.table::<String, i64>("prices", "prices-store");
    let cheap = t.filter(|_, p| *p < 100, "cheap");
    cheap.to_change_stream().to("cheap-changes");
    t.map_values(|p| p * 2, Materialized::default())
        .to_stream()
        .to("doubled");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("prices", s("pen"), 5i64, 1)?;
    d.pipe("prices", s("tv"), 500i64, 2)?;
    d.pipe("prices", s("pen"), 150i64, 3)?; // leaves the filter: tombstone downstream
    d.pipe("prices", s("pen"), None::<i64>, 4)?; // deleted: nothing new for the filter
    d.pipe("prices", s("tv"), 50i64, 5)?;
    assert_eq!(
        d.read_output::<String, Option<i64>>("cheap-changes")?,
        vec![(s("pen"), Some(5)), (s("pen"), None), (s("tv"), Some(50))]
    );
    assert_eq!(
        d.read_output::<String, i64>("doubled")?,
        vec![kv("pen", 10), kv("tv", 1000), kv("pen", 300), kv("tv", 100)]
    );
    let store = d.key_value_store::<String, i64>("prices-store");
    assert_eq!(store.get(&s("pen"))?, None);
    assert_eq!(store.get(&s("tv"))?, Some(50));
    assert_eq!(
        d.key_value_store::<String, i64>("cheap").all()?,
        vec![kv("tv", 50)]
    );
    Ok(())
}

#[test]
fn stream_stream_inner_join_within_the_window() -> R {
    let b = StreamsBuilder::new();
    let left = b.stream::<String, String>("left");
    let right = b.stream::<String, String>("right");
    left.join(
        &right,
        |l, r| format!("{l}+{r}"),
        JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10)),
    )
    .to("joined");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("left", s("k"), s("L1"), 100)?;
    d.pipe("right", s("k"), s("R1"), 105)?; // within 10 of L1
    d.pipe("right", s("k"), s("R2"), 115)?; // 15 from L1: no
    d.pipe("left", s("k"), s("L2"), 112)?; // joins R1 (7) and R2 (3)
    d.pipe("right", s("other"), s("X"), 112)?;
    assert_eq!(
        d.read_records::<String, String>("joined")?,
        vec![
            TestRecord {
                key: s("k"),
                value: s("L1+R1"),
                timestamp: 105
            },
            TestRecord {
                key: s("k"),
                value: s("L2+R1"),
                timestamp: 112
            },
            TestRecord {
                key: s("k"),
                value: s("L2+R2"),
                timestamp: 115
            },
        ]
    );
    Ok(())
}

#[test]
fn stream_stream_left_join_emits_unmatched_after_the_window_closes() -> R {
    let b = StreamsBuilder::new();
    let left = b.stream::<String, String>("left");
    let right = b.stream::<String, String>("right");
    left.left_join(
        &right,
        |l, r| format!("{l}+{}", r.map_or("null", |r| r.as_str())),
        JoinWindows::of_time_difference_and_grace(
            Duration::from_millis(10),
            Duration::from_millis(5),
        ),
    )
    .to("joined");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("left", s("a"), s("A"), 100)?; // never matched
    d.pipe("left", s("b"), s("B"), 101)?; // matched later
    d.pipe("right", s("b"), s("b1"), 108)?;
    assert_eq!(
        d.read_output::<String, String>("joined")?,
        vec![(s("b"), s("B+b1"))]
    );
    // Stream time 115 = 100 + 10 + 5: A's window may still get a partner.
    d.pipe("right", s("z"), s("z"), 115)?;
    assert!(d.read_output::<String, String>("joined")?.is_empty());
    d.pipe("right", s("z"), s("z"), 116)?;
    assert_eq!(
        d.read_output::<String, String>("joined")?,
        vec![(s("a"), s("A+null"))]
    );
    Ok(())
}

#[test]
fn stream_stream_outer_join_emits_both_sides_unmatched() -> R {
    let b = StreamsBuilder::new();
    let left = b.stream::<String, String>("left");
    let right = b.stream::<String, String>("right");
    left.outer_join(
        &right,
        |l, r| {
            format!(
                "{}+{}",
                l.map_or("null", |l| l.as_str()),
                r.map_or("null", |r| r.as_str())
            )
        },
        JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10)),
    )
    .to("joined");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("left", s("a"), s("A"), 0)?;
    d.pipe("right", s("b"), s("B"), 1)?;
    d.pipe("right", s("a"), s("a1"), 5)?;
    d.pipe("left", s("c"), s("C"), 30)?; // closes the windows of 0..19
    assert_eq!(
        d.read_output::<String, String>("joined")?,
        vec![(s("a"), s("A+a1")), (s("b"), s("null+B"))]
    );
    Ok(())
}

#[test]
fn stream_table_joins() -> R {
    let b = StreamsBuilder::new();
    let users = b.table::<String, String>("users", "users-store");
    let clicks = b.stream::<String, String>("clicks");
    clicks
        .join_table(&users, |c, u| format!("{u} clicked {c}"))
        .to("inner");
    clicks
        .left_join_table(&users, |c, u| {
            format!("{} clicked {c}", u.map_or("?", |u| u.as_str()))
        })
        .to("left");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("clicks", s("u1"), s("home"), 1)?;
    d.pipe("users", s("u1"), s("Ada"), 2)?; // table updates alone emit nothing
    d.pipe("clicks", s("u1"), s("cart"), 3)?;
    assert_eq!(
        d.read_output::<String, String>("inner")?,
        vec![(s("u1"), s("Ada clicked cart"))]
    );
    assert_eq!(
        d.read_output::<String, String>("left")?,
        vec![
            (s("u1"), s("? clicked home")),
            (s("u1"), s("Ada clicked cart"))
        ]
    );
    Ok(())
}

#[test]
fn table_table_inner_left_outer_joins() -> R {
    let b = StreamsBuilder::new();
    let l = b.table::<String, i64>("l", "l-store");
    let r = b.table::<String, i64>("r", "r-store");
    l.join(&r, |a, b| a * 100 + b, "inner")
        .to_change_stream()
        .to("inner");
    l.left_join(&r, |a, b| a * 100 + b.copied().unwrap_or(0), "left")
        .to_change_stream()
        .to("left");
    l.outer_join(
        &r,
        |a, b| a.copied().unwrap_or(0) * 100 + b.copied().unwrap_or(0),
        "outer",
    )
    .to_change_stream()
    .to("outer");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("l", s("k"), 1i64, 1)?;
    d.pipe("r", s("k"), 2i64, 2)?;
    d.pipe("r", s("k"), None::<i64>, 3)?;
    assert_eq!(
        d.read_output::<String, Option<i64>>("inner")?,
        vec![(s("k"), Some(102)), (s("k"), None)]
    );
    assert_eq!(
        d.read_output::<String, Option<i64>>("left")?,
        vec![
            (s("k"), Some(100)),
            (s("k"), Some(102)),
            (s("k"), Some(100))
        ]
    );
    assert_eq!(
        d.read_output::<String, Option<i64>>("outer")?,
        vec![
            (s("k"), Some(100)),
            (s("k"), Some(102)),
            (s("k"), Some(100))
        ]
    );
    d.pipe("r", s("only-right"), 7i64, 4)?;
    assert!(d.read_output::<String, Option<i64>>("inner")?.is_empty());
    assert!(d.read_output::<String, Option<i64>>("left")?.is_empty());
    assert_eq!(
        d.read_output::<String, Option<i64>>("outer")?,
        vec![(s("only-right"), Some(7))]
    );
    Ok(())
}

#[test]
fn stream_global_table_join_by_derived_key() -> R {
    let b = StreamsBuilder::new();
    let products = b.global_table::<String, String>("products", "products-store");
    let orders = b.stream::<String, String>("orders"); // key: order id, value: product id
    orders
        .join_global(
            &products,
            |_, product| product.clone(),
            |p, name| format!("{p}={name}"),
        )
        .to("inner");
    orders
        .left_join_global(
            &products,
            |_, product| product.clone(),
            |p, name| format!("{p}={}", name.map_or("unknown", |n| n.as_str())),
        )
        .to("left");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("products", s("p1"), s("pen"), 0)?;
    d.pipe("orders", s("o1"), s("p1"), 1)?;
    d.pipe("orders", s("o2"), s("p9"), 2)?;
    assert_eq!(
        d.read_output::<String, String>("inner")?,
        vec![(s("o1"), s("p1=pen"))]
    );
    assert_eq!(
        d.read_output::<String, String>("left")?,
        vec![(s("o1"), s("p1=pen")), (s("o2"), s("p9=unknown"))]
    );
    assert_eq!(
        d.key_value_store::<String, String>("products-store")
            .get(&s("p1"))?,
        Some(s("pen"))
    );
    Ok(())
}

#[test]
fn stores_restored_from_changelogs_continue_where_they_stopped() -> R {
    let mut first = TopologyTestDriver::new(word_count().build()?)?;
    first.pipe("lines", (), s("a b a"), 1)?;
    let logs: Changelogs = first.changelogs().clone();
    drop(first);
    // A new instance (another process, another machine) rebuilds the store from the
    // changelog and continues counting from there.
    let mut second = TopologyTestDriver::restored(word_count().build()?, "test-app", &logs)?;
    assert_eq!(
        second.key_value_store::<String, i64>("counts").all()?,
        vec![kv("a", 2), kv("b", 1)]
    );
    second.pipe("lines", (), s("a"), 2)?;
    assert_eq!(second.read_output::<String, i64>("out")?, vec![kv("a", 3)]);
    Ok(())
}

#[test]
fn duplicate_store_names_are_rejected() {
    let b = StreamsBuilder::new();
    b.table::<String, String>("t1", "same");
    b.table::<String, String>("t2", "same");
    assert!(matches!(
        b.build(),
        Err(fjord_streams::StreamsError::Topology(_))
    ));
}

#[test]
fn topology_describe_names_sources_and_stores() -> R {
    let t = word_count().build()?;
    let text = t.describe();
    assert!(text.contains("Source topic lines"), "{text}");
    assert!(
        text.contains("Source internal topic counts-repartition"),
        "{text}"
    );
    assert!(text.contains("Store counts"), "{text}");
    assert_eq!(t.source_topics(), vec![s("lines")]);
    Ok(())
}

#[test]
fn table_filter_not_and_unlogged_stores() -> R {
    let b = StreamsBuilder::new();
    let t = b.table::<String, i64>("t", Materialized::as_("t-store").with_logging_disabled());
    t.filter_not(|_, v| *v % 2 == 0, "odd")
        .to_stream()
        .to("odd");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("t", s("a"), 1i64, 1)?;
    d.pipe("t", s("b"), 2i64, 2)?;
    assert_eq!(d.read_output::<String, i64>("odd")?, vec![kv("a", 1)]);
    assert!(!d.changelogs().contains_key("t-store"), "logging disabled");
    assert!(d.changelogs().contains_key("odd"));
    Ok(())
}

#[test]
fn stream_to_table_keeps_the_latest_value_per_key() -> R {
    let b = StreamsBuilder::new();
    let latest = b
        .stream::<String, String>("in")
        .select_key(|_, v| v.chars().next().map(String::from).unwrap_or_default())
        .to_table("latest");
    latest.to_change_stream().to("changes");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("in", s("x"), s("apple"), 1)?;
    d.pipe("in", s("y"), s("avocado"), 2)?;
    d.pipe("in", s("z"), s("banana"), 3)?;
    assert_eq!(
        d.key_value_store::<String, String>("latest").all()?,
        vec![(s("a"), s("avocado")), (s("b"), s("banana"))]
    );
    assert_eq!(d.read_output::<String, Option<String>>("changes")?.len(), 3);
    Ok(())
}

#[test]
fn table_group_by_subtracts_old_rows_and_adds_new_ones() -> R {
    let b = StreamsBuilder::new();
    let users = b.table::<String, String>("users", "users-store"); // user → region
    users
        .group_by(|user, region| (region.clone(), user.clone()))
        .count("users-per-region")
        .to_stream()
        .to("counts");
    let scores = b.table::<String, i64>("scores", "scores-store"); // "team/player" → score
    scores
        .group_by(|id, score| (id.split('/').next().unwrap_or_default().to_string(), *score))
        .reduce(|a, v| a + v, |a, v| a - v, "team-totals")
        .to_stream()
        .to("totals");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("users", s("ada"), s("eu"), 1)?;
    d.pipe("users", s("bob"), s("eu"), 2)?;
    d.pipe("users", s("ada"), s("us"), 3)?; // moves: eu loses one, us gains one
    d.pipe("users", s("bob"), None::<String>, 4)?; // deleted: eu loses one
    assert_eq!(
        d.read_output::<String, i64>("counts")?,
        vec![
            kv("eu", 1),
            kv("eu", 2),
            kv("eu", 1),
            kv("us", 1),
            kv("eu", 0)
        ]
    );
    assert!(d
        .output_topics()
        .contains(&s("test-app-users-per-region-repartition")));

    d.pipe("scores", s("red/1"), 10i64, 1)?;
    d.pipe("scores", s("red/2"), 5i64, 2)?;
    d.pipe("scores", s("red/1"), 12i64, 3)?; // replaces 10 by 12
    assert_eq!(
        d.read_output::<String, i64>("totals")?,
        vec![kv("red", 10), kv("red", 15), kv("red", 5), kv("red", 17)]
    );
    assert_eq!(
        d.key_value_store::<String, i64>("team-totals")
            .get(&s("red"))?,
        Some(17)
    );
    Ok(())
}
