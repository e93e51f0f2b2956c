//! Windowed aggregations (tumbling, hopping, sliding, session), grace periods and suppress,
//! run with the deterministic driver.

use fjord_streams::{
    SessionWindows, SlidingWindows, StreamsBuilder, Suppressed, TestRecord, TimeWindows,
    TopologyTestDriver, Window, Windowed,
};
use std::time::Duration;

type R = fjord_streams::Result<()>;

fn s(x: &str) -> String {
    x.to_string()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn w(k: &str, start: i64, end: i64) -> Windowed<String> {
    Windowed::new(s(k), start, end)
}

fn windowed_counts(windows: TimeWindows) -> TopologyTestDriver {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(windows)
        .count("counts")
        .to_stream()
        .to("out");
    TopologyTestDriver::new(b.build().expect("topology")).expect("driver")
}

#[test]
fn tumbling_windows_count_per_key_and_window() -> R {
    let mut d = windowed_counts(TimeWindows::of_size_with_no_grace(ms(10)));
    d.pipe("clicks", s("u"), s("x"), 1)?;
    d.pipe("clicks", s("u"), s("x"), 9)?;
    d.pipe("clicks", s("u"), s("x"), 10)?;
    d.pipe("clicks", s("v"), s("x"), 12)?;
    assert_eq!(
        d.read_output::<Windowed<String>, i64>("out")?,
        vec![
            (w("u", 0, 10), 1),
            (w("u", 0, 10), 2),
            (w("u", 10, 20), 1),
            (w("v", 10, 20), 1)
        ]
    );
    let store = d.window_store::<String, i64>("counts");
    assert_eq!(
        store.fetch(&s("u"), 0, 100)?,
        vec![
            (Window { start: 0, end: 10 }, 2),
            (Window { start: 10, end: 20 }, 1)
        ]
    );
    Ok(())
}

#[test]
fn hopping_windows_put_a_record_in_every_overlapping_window() -> R {
    let mut d = windowed_counts(TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(5)));
    d.pipe("clicks", s("u"), s("x"), 7)?;
    assert_eq!(
        d.read_output::<Windowed<String>, i64>("out")?,
        vec![(w("u", 0, 10), 1), (w("u", 5, 15), 1)]
    );
    Ok(())
}

#[test]
fn grace_period_accepts_late_records_until_the_window_closes() -> R {
    let mut d = windowed_counts(TimeWindows::of_size_and_grace(ms(10), ms(5)));
    d.pipe("clicks", s("u"), s("x"), 3)?;
    d.pipe("clicks", s("u"), s("x"), 14)?; // stream time 14: [0,10) open until 15
    d.pipe("clicks", s("u"), s("x"), 4)?; // late but within grace: counted
    d.pipe("clicks", s("u"), s("x"), 15)?; // stream time 15 closes [0,10)
    d.pipe("clicks", s("u"), s("x"), 5)?; // too late: dropped
    assert_eq!(
        d.read_output::<Windowed<String>, i64>("out")?,
        vec![
            (w("u", 0, 10), 1),
            (w("u", 10, 20), 1),
            (w("u", 0, 10), 2),
            (w("u", 10, 20), 2)
        ]
    );
    Ok(())
}

#[test]
fn suppress_emits_only_final_results_when_windows_close() -> R {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(2)))
        .count("counts")
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .to("final");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    for t in [1, 2, 5] {
        d.pipe("clicks", s("u"), s("x"), t)?;
    }
    d.pipe("clicks", s("v"), s("x"), 8)?;
    d.pipe("clicks", s("u"), s("x"), 11)?; // stream time 11 < 10 + 2: nothing final yet
    assert!(d.read_output::<Windowed<String>, i64>("final")?.is_empty());
    d.pipe("clicks", s("u"), s("x"), 12)?; // closes [0,10)
    assert_eq!(
        d.read_records::<Windowed<String>, i64>("final")?,
        vec![
            TestRecord {
                key: w("u", 0, 10),
                value: 3,
                timestamp: 5
            },
            TestRecord {
                key: w("v", 0, 10),
                value: 1,
                timestamp: 8
            },
        ]
    );
    d.pipe("clicks", s("u"), s("x"), 40)?;
    assert_eq!(
        d.read_output::<Windowed<String>, i64>("final")?,
        vec![(w("u", 10, 20), 2)]
    );
    Ok(())
}

#[test]
fn sliding_windows_follow_kafka_semantics() -> R {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("in")
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
            ms(10),
            ms(100),
        ))
        .reduce(|a, v| a + v, "sums")
        .to_stream()
        .to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("in", s("k"), 1i64, 20)?; // left window [10,20]
    d.pipe("in", s("k"), 2i64, 25)?; // left [15,25] = 1+2; right of 20: [21,31] = 2
    d.pipe("in", s("k"), 4i64, 40)?; // left [30,40] = 4; right of 25: [26,36] has nothing but... 40 > 36
    assert_eq!(
        d.read_output::<Windowed<String>, i64>("out")?,
        vec![
            (w("k", 10, 20), 1),
            (w("k", 15, 25), 3),
            (w("k", 21, 31), 2),
            (w("k", 30, 40), 4),
        ]
    );
    // A record between earlier ones updates every window that contains it.
    d.pipe("in", s("k"), 8i64, 22)?;
    assert_eq!(
        d.read_output::<Windowed<String>, i64>("out")?,
        vec![
            (w("k", 12, 22), 9),
            (w("k", 15, 25), 11),
            (w("k", 21, 31), 10),
            (w("k", 23, 33), 2),
        ]
    );
    Ok(())
}

#[test]
fn session_windows_merge_when_a_record_bridges_sessions() -> R {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .group_by_key()
        .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(ms(5)))
        .count("sessions")
        .to_change_stream()
        .to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("in", s("u"), s("x"), 0)?;
    d.pipe("in", s("u"), s("x"), 10)?; // new session (gap 10 > 5)
    d.pipe("in", s("u"), s("x"), 5)?; // within 5 of both: merges [0,0] and [10,10]
    assert_eq!(
        d.read_output::<Windowed<String>, Option<i64>>("out")?,
        vec![
            (w("u", 0, 0), Some(1)),
            (w("u", 10, 10), Some(1)),
            (w("u", 0, 0), None),
            (w("u", 10, 10), None),
            (w("u", 0, 10), Some(3)),
        ]
    );
    let store = d.window_store::<String, i64>("sessions");
    assert_eq!(store.all()?, vec![(w("u", 0, 10), 3)]);
    d.pipe("in", s("u"), s("x"), 100)?;
    d.pipe("in", s("u"), s("x"), 3)?; // session [0,10] closed at stream time 100: dropped
    assert_eq!(
        d.read_output::<Windowed<String>, Option<i64>>("out")?,
        vec![(w("u", 100, 100), Some(1))]
    );
    Ok(())
}

#[test]
fn session_aggregate_uses_the_merger() -> R {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .group_by_key()
        .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(ms(5), ms(0)))
        .aggregate(
            String::new,
            |_, v, a| format!("{a}{v}"),
            |_, a, b| format!("{a}|{b}"),
            "agg",
        )
        .to_stream()
        .to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("in", s("u"), s("a"), 0)?;
    d.pipe("in", s("u"), s("b"), 10)?;
    d.pipe("in", s("u"), s("c"), 5)?;
    let out = d.read_output::<Windowed<String>, String>("out")?;
    assert_eq!(out.last(), Some(&(w("u", 0, 10), s("a|bc"))));
    Ok(())
}

#[test]
fn window_retention_expires_old_windows_on_flush() -> R {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
        .count(fjord_streams::Materialized::as_("counts").with_retention(ms(20)))
        .to_stream()
        .to("out");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("clicks", s("u"), s("x"), 0)?;
    d.pipe("clicks", s("u"), s("x"), 35)?;
    d.flush()?;
    let store = d.window_store::<String, i64>("counts");
    assert_eq!(
        store.fetch(&s("u"), 0, 100)?,
        vec![(Window { start: 30, end: 40 }, 1)]
    );
    // The expiry is in the changelog too, so a restored store forgets the window.
    let log = &d.changelogs()["counts"];
    assert_eq!(log.last().map(|(_, v)| v.is_none()), Some(true));
    Ok(())
}

#[test]
fn window_store_and_suppress_buffer_are_restored_from_their_changelogs() -> R {
    let build = || {
        let b = StreamsBuilder::new();
        b.stream::<String, String>("clicks")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
            .count("counts")
            .suppress(Suppressed::until_window_closes())
            .to_stream()
            .to("final");
        b.build()
    };
    let mut first = TopologyTestDriver::new(build()?)?;
    first.pipe("clicks", s("u"), s("x"), 1)?;
    first.pipe("clicks", s("u"), s("x"), 2)?;
    let logs = first.changelogs().clone();
    assert_eq!(
        logs.len(),
        2,
        "window store and suppress buffer: {:?}",
        logs.keys()
    );
    drop(first);

    let mut second = TopologyTestDriver::restored(build()?, "test-app", &logs)?;
    second.pipe("clicks", s("u"), s("x"), 3)?;
    second.pipe("clicks", s("v"), s("x"), 10)?; // closes [0,10)
    assert_eq!(
        second.read_output::<Windowed<String>, i64>("final")?,
        vec![(w("u", 0, 10), 3)]
    );
    Ok(())
}

#[test]
fn hopping_windows_with_grace_and_session_reduce() -> R {
    let b = StreamsBuilder::new();
    let input = b.stream::<String, i64>("in");
    input
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)).advance_by(ms(5)))
        .reduce(|a, v| (*a).max(*v), "max")
        .to_stream()
        .to("hopping");
    input
        .group_by_key()
        .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(ms(3)))
        .reduce(|a, v| a + v, "session-sums")
        .to_stream()
        .to("sessions");
    let mut d = TopologyTestDriver::new(b.build()?)?;
    d.pipe("in", s("k"), 4i64, 6)?;
    d.pipe("in", s("k"), 9i64, 8)?;
    d.pipe("in", s("k"), 1i64, 21)?; // stream time 21: [5,15) closes at 20, [10,20) at 25
    d.pipe("in", s("k"), 7i64, 12)?; // [5,15) closed: dropped there; [10,20) takes it
    assert_eq!(
        d.read_output::<Windowed<String>, i64>("hopping")?,
        vec![
            (w("k", 0, 10), 4),
            (w("k", 5, 15), 4),
            (w("k", 0, 10), 9),
            (w("k", 5, 15), 9),
            (w("k", 15, 25), 1),
            (w("k", 20, 30), 1),
            (w("k", 10, 20), 7),
        ]
    );
    assert_eq!(
        d.read_output::<Windowed<String>, i64>("sessions")?,
        vec![(w("k", 6, 6), 4), (w("k", 6, 8), 13), (w("k", 21, 21), 1)]
    );
    Ok(())
}
