//! Stateless operators, run with the deterministic driver: exact outputs.

use fjord_streams::{
    JsonValue, KStream, Predicate, StreamsBuilder, TestRecord, TopologyTestDriver,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

type R = fjord_streams::Result<()>;

fn s(x: &str) -> String {
    x.to_string()
}

fn driver_for(f: impl FnOnce(KStream<String, String>)) -> TopologyTestDriver {
    let b = StreamsBuilder::new();
    f(b.stream::<String, String>("in"));
    TopologyTestDriver::new(b.build().expect("topology")).expect("driver")
}

fn pipe_abc(d: &mut TopologyTestDriver) -> R {
    d.pipe("in", s("a"), s("apple"), 1)?;
    d.pipe("in", s("b"), s("banana"), 2)?;
    d.pipe("in", s("c"), s("cherry"), 3)?;
    Ok(())
}

#[test]
fn filter_and_filter_not() -> R {
    let mut d = driver_for(|st| {
        st.filter(|_, v| v.contains("an")).to("kept");
        st.filter_not(|_, v| v.contains("an")).to("dropped");
    });
    pipe_abc(&mut d)?;
    assert_eq!(
        d.read_output::<String, String>("kept")?,
        vec![(s("b"), s("banana"))]
    );
    assert_eq!(
        d.read_output::<String, String>("dropped")?,
        vec![(s("a"), s("apple")), (s("c"), s("cherry"))]
    );
    Ok(())
}

#[test]
fn map_map_values_and_select_key_keep_timestamps() -> R {
    let mut d = driver_for(|st| {
        st.map(|k, v| (v.len() as i64, format!("{k}:{v}")))
            .to("mapped");
        st.map_values(|v| v.to_uppercase()).to("upper");
        st.select_key(|_, v| v.chars().next().unwrap_or('?').to_string())
            .to("rekeyed");
    });
    pipe_abc(&mut d)?;
    assert_eq!(
        d.read_records::<i64, String>("mapped")?,
        vec![
            TestRecord {
                key: 5,
                value: s("a:apple"),
                timestamp: 1
            },
            TestRecord {
                key: 6,
                value: s("b:banana"),
                timestamp: 2
            },
            TestRecord {
                key: 6,
                value: s("c:cherry"),
                timestamp: 3
            },
        ]
    );
    assert_eq!(
        d.read_output::<String, String>("upper")?,
        vec![
            (s("a"), s("APPLE")),
            (s("b"), s("BANANA")),
            (s("c"), s("CHERRY"))
        ]
    );
    assert_eq!(
        d.read_output::<String, String>("rekeyed")?,
        vec![
            (s("a"), s("apple")),
            (s("b"), s("banana")),
            (s("c"), s("cherry"))
        ]
    );
    Ok(())
}

#[test]
fn flat_map_and_flat_map_values() -> R {
    let mut d = driver_for(|st| {
        st.flat_map_values(|v| v.chars().take(2).map(String::from).collect::<Vec<_>>())
            .to("chars");
        st.flat_map(|k, v| vec![(v.clone(), k.clone()); 2])
            .to("swapped");
    });
    d.pipe("in", s("k"), s("xy"), 7)?;
    assert_eq!(
        d.read_output::<String, String>("chars")?,
        vec![(s("k"), s("x")), (s("k"), s("y"))]
    );
    assert_eq!(
        d.read_output::<String, String>("swapped")?,
        vec![(s("xy"), s("k")), (s("xy"), s("k"))]
    );
    Ok(())
}

#[test]
fn peek_and_for_each_see_every_record() -> R {
    let peeked = Arc::new(AtomicUsize::new(0));
    let each = Arc::new(AtomicUsize::new(0));
    let (p, e) = (peeked.clone(), each.clone());
    let mut d = driver_for(move |st| {
        st.peek(move |_, _| {
            p.fetch_add(1, Ordering::SeqCst);
        })
        .to("out");
        st.for_each(move |_, v| {
            e.fetch_add(v.len(), Ordering::SeqCst);
        });
    });
    pipe_abc(&mut d)?;
    assert_eq!(peeked.load(Ordering::SeqCst), 3);
    assert_eq!(each.load(Ordering::SeqCst), 5 + 6 + 6);
    assert_eq!(d.read_output::<String, String>("out")?.len(), 3);
    Ok(())
}

#[test]
fn branch_sends_each_record_to_the_first_matching_branch_only() -> R {
    let mut d = driver_for(|st| {
        let preds: Vec<Predicate<String, String>> = vec![
            Box::new(|_, v| v.starts_with('a')),
            Box::new(|_, v| v.len() == 6),
        ];
        let branches = st.branch(preds);
        branches[0].to("a-words");
        branches[1].to("six-letters");
    });
    pipe_abc(&mut d)?;
    d.pipe("in", s("d"), s("date"), 4)?; // matches nothing
    assert_eq!(
        d.read_output::<String, String>("a-words")?,
        vec![(s("a"), s("apple"))]
    );
    assert_eq!(
        d.read_output::<String, String>("six-letters")?,
        vec![(s("b"), s("banana")), (s("c"), s("cherry"))]
    );
    Ok(())
}

#[test]
fn merge_interleaves_two_streams() -> R {
    let b = StreamsBuilder::new();
    let one = b.stream::<String, String>("one");
    let two = b.stream::<String, String>("two");
    one.merge(&two).map_values(|v| format!("<{v}>")).to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("one", s("x"), s("1"), 1)?;
    d.pipe("two", s("y"), s("2"), 2)?;
    d.pipe("one", s("z"), s("3"), 3)?;
    assert_eq!(
        d.read_output::<String, String>("out")?,
        vec![(s("x"), s("<1>")), (s("y"), s("<2>")), (s("z"), s("<3>"))]
    );
    Ok(())
}

#[test]
fn repartition_goes_through_an_internal_topic() -> R {
    let mut d = driver_for(|st| {
        st.select_key(|_, v| v.clone()).repartition().to("out");
    });
    pipe_abc(&mut d)?;
    let topics = d.output_topics();
    let internal: Vec<&String> = topics
        .iter()
        .filter(|t| t.ends_with("-repartition"))
        .collect();
    assert_eq!(internal.len(), 1, "{topics:?}");
    assert!(internal[0].starts_with("test-app-KSTREAM-REPARTITION-"));
    assert_eq!(
        d.read_output::<String, String>("out")?,
        vec![
            (s("apple"), s("apple")),
            (s("banana"), s("banana")),
            (s("cherry"), s("cherry"))
        ]
    );
    Ok(())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u32,
    amount: i64,
}
impl JsonValue for Order {}

#[test]
fn json_values_integers_and_absent_keys() -> R {
    let b = StreamsBuilder::new();
    b.stream::<(), Order>("orders")
        .select_key(|_, o| o.id as i64)
        .map_values(|o| o.amount * 2)
        .to("doubled");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("orders", (), Order { id: 7, amount: 21 }, 0)?;
    assert_eq!(d.read_output::<i64, i64>("doubled")?, vec![(7, 42)]);
    // A value that is not valid JSON is an error, not a panic.
    let err = d.pipe_raw("orders", None, Some(bytes::Bytes::from_static(b"{oops")), 1);
    assert!(matches!(err, Err(fjord_streams::StreamsError::Serde(_))));
    Ok(())
}

#[test]
fn piping_to_an_unknown_topic_fails() {
    let mut d = driver_for(|st| st.to("out"));
    assert!(d.pipe("nope", s("k"), s("v"), 0).is_err());
}

#[test]
fn one_stream_from_several_topics() -> R {
    let b = StreamsBuilder::new();
    b.streams::<String, String>(&["t1", "t2"]).to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("t2", s("b"), s("2"), 1)?;
    d.pipe("t1", s("a"), s("1"), 2)?;
    assert_eq!(
        d.read_output::<String, String>("out")?,
        vec![(s("b"), s("2")), (s("a"), s("1"))]
    );
    Ok(())
}

#[test]
fn records_run_depth_first_through_the_graph() -> R {
    let mut d = driver_for(|st| {
        st.map_values(|v| format!("{v}-a")).to("out");
        st.map_values(|v| format!("{v}-b")).to("out");
    });
    d.pipe("in", s("k"), s("1"), 1)?;
    d.pipe("in", s("k"), s("2"), 2)?;
    let values: Vec<String> = d
        .read_output::<String, String>("out")?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, vec!["1-a", "1-b", "2-a", "2-b"]);
    Ok(())
}

#[test]
fn a_builder_builds_the_same_topology_twice() -> R {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in").to("out");
    let first = b.build()?;
    let second = b.build()?;
    assert_eq!(first.describe(), second.describe());
    let mut d = TopologyTestDriver::new(second)?;
    d.pipe("in", s("k"), s("v"), 0)?;
    assert_eq!(
        d.read_output::<String, String>("out")?,
        vec![(s("k"), s("v"))]
    );
    Ok(())
}

#[test]
fn split_with_a_default_branch() -> R {
    let mut d = driver_for(|st| {
        let branches = st
            .split()
            .branch(|_, v| v.starts_with('a'))
            .branch(|_, v| v.starts_with('b'))
            .default_branch();
        assert_eq!(branches.len(), 3);
        branches[0].to("a");
        branches[1].to("b");
        branches[2].to("rest");
    });
    pipe_abc(&mut d)?;
    assert_eq!(
        d.read_output::<String, String>("a")?,
        vec![(s("a"), s("apple"))]
    );
    assert_eq!(
        d.read_output::<String, String>("b")?,
        vec![(s("b"), s("banana"))]
    );
    assert_eq!(
        d.read_output::<String, String>("rest")?,
        vec![(s("c"), s("cherry"))]
    );
    Ok(())
}
