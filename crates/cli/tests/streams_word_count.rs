//! Fjord Streams against an in-process broker: word count with one instance (exact), with
//! two instances sharing the tasks (exact), and with one of two instances killed mid-stream
//! (its tasks move, their stores are restored from the changelogs, every word is counted at
//! least once).

use fjord_client::{
    Admin, AdminConfig, ConfigResource, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};
use fjord_streams::{KafkaStreams, StreamsBuilder, StreamsConfig, StreamsState};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod in_process;

use in_process::{TestBroker, TestError};

type TestResult = Result<(), TestError>;

const PARTITIONS: i32 = 3;
const WORDS: usize = 12;

fn word_count(input: &str, output: &str) -> fjord_streams::Result<fjord_streams::Topology> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>(input)
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone())
        .count("counts")
        .to_stream()
        .to(output);
    b.build()
}

/// Settings for the tests; `session_ms` bounds how long a killed instance keeps its tasks.
fn config(
    broker: &TestBroker,
    app: &str,
    dir: &tempfile::TempDir,
    session_ms: u32,
) -> fjord_streams::Result<StreamsConfig> {
    StreamsConfig::new(app, broker.bootstrap())
        .state_dir(dir.path())
        .commit_interval(Duration::from_millis(200))
        .set("consumer.session.timeout.ms", session_ms.to_string())?
        .set("consumer.heartbeat.interval.ms", "500")?
        .set("consumer.fetch.max.wait.ms", "100")
}

/// Line `i` holds three words; returns the lines and the exact count of every word.
fn lines(from: usize, to: usize) -> (Vec<String>, BTreeMap<String, i64>) {
    let mut counts = BTreeMap::new();
    let mut out = Vec::new();
    for i in from..to {
        let words: Vec<String> = (0..3)
            .map(|j| format!("w{}", (i * 7 + j * 5) % WORDS))
            .collect();
        for w in &words {
            *counts.entry(w.clone()).or_insert(0) += 1;
        }
        out.push(words.join(" "));
    }
    (out, counts)
}

async fn produce(broker: &TestBroker, topic: &str, from: usize, lines: &[String]) -> TestResult {
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    let mut deliveries = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        // Keys spread the lines over the partitions.
        let record = ProducerRecord::new(topic)
            .key(format!("line-{}", from + i))
            .value(line.clone());
        deliveries.push(producer.send(record).await?);
    }
    for d in deliveries {
        d.await?;
    }
    producer.close().await?;
    Ok(())
}

/// Creates the input topic and the output topic `out-<input>`.
async fn create_input(admin: &Admin, topic: &str) -> TestResult {
    admin
        .create_topics(&[
            NewTopic::new(topic, PARTITIONS),
            NewTopic::new(format!("out-{topic}"), PARTITIONS),
        ])
        .await?;
    Ok(())
}

/// Reads the output topic from the start until every word's latest count satisfies `done`,
/// or the deadline passes; returns the latest counts.
async fn read_counts(
    broker: &TestBroker,
    topic: &str,
    done: impl Fn(&BTreeMap<String, i64>) -> bool,
) -> Result<BTreeMap<String, i64>, TestError> {
    let mut consumer = Consumer::new(
        ConsumerConfig::new(broker.bootstrap())
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_max_wait_ms(100),
    )?;
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&tps)?;
    let mut latest = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&latest) && Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(200)).await? {
            let key = String::from_utf8(r.key.clone().unwrap_or_default().to_vec())?;
            let value = r.value.as_deref().ok_or("null count")?;
            let count = i64::from_be_bytes(value.try_into()?);
            latest.insert(key, count);
        }
    }
    consumer.close().await?;
    Ok(latest)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_is_exact_with_one_instance() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    create_input(&admin, "lines").await?;
    let (input, expected) = lines(0, 200);
    produce(&broker, "lines", 0, &input).await?;

    let dir = tempfile::tempdir()?;
    let mut app = KafkaStreams::new(
        word_count("lines", "out-lines")?,
        config(&broker, "wc", &dir, 30_000)?,
    );
    app.start().await?;
    let got = read_counts(&broker, "out-lines", |c| c == &expected).await?;
    assert_eq!(got, expected);

    // Interactive query of the local store agrees.
    let store = app.store::<String, i64>("counts");
    wait_for("the store to hold every word", || {
        store
            .all()
            .map(|a| a.len() == expected.len())
            .unwrap_or(false)
    })
    .await?;
    assert_eq!(
        store.all()?.into_iter().collect::<BTreeMap<_, _>>(),
        expected
    );
    assert_eq!(app.state(), StreamsState::Running);

    // The internal topics exist: a compacted changelog, and the repartition topic.
    let topics = admin.list_topics(false).await?;
    assert!(
        topics.contains(&"wc-counts-changelog".to_string()),
        "{topics:?}"
    );
    assert!(
        topics.contains(&"wc-counts-repartition".to_string()),
        "{topics:?}"
    );
    let configs = admin
        .describe_configs(&[ConfigResource::Topic("wc-counts-changelog".into())])
        .await?;
    let policy = configs
        .iter()
        .flat_map(|(_, entries)| entries)
        .find(|e| e.name == "cleanup.policy")
        .and_then(|e| e.value.clone());
    assert_eq!(policy.as_deref(), Some("compact"));
    app.close().await?;

    // Offsets were committed: a restarted instance (fresh state dir) restores the counts
    // from the changelog and reprocesses nothing already committed.
    let (more, more_counts) = lines(200, 230);
    produce(&broker, "lines", 200, &more).await?;
    let mut expected_all = expected.clone();
    for (w, c) in more_counts {
        *expected_all.entry(w).or_insert(0) += c;
    }
    let dir2 = tempfile::tempdir()?;
    let mut app = KafkaStreams::new(
        word_count("lines", "out-lines")?,
        config(&broker, "wc", &dir2, 30_000)?,
    );
    app.start().await?;
    let got = read_counts(&broker, "out-lines", |c| c == &expected_all).await?;
    assert_eq!(got, expected_all);
    assert_eq!(
        app.restored_records(),
        600,
        "a new state dir restores the whole changelog"
    );
    app.close().await?;

    // Back on the first state directory: its persistent (fjall) store and checkpoint cover
    // the first 600 changelog records, so only the 90 written since are replayed.
    let mut app = KafkaStreams::new(
        word_count("lines", "out-lines")?,
        config(&broker, "wc", &dir, 30_000)?,
    );
    app.start().await?;
    let store = app.store::<String, i64>("counts");
    wait_for("the restored store", || {
        store
            .all()
            .map(|a| a.into_iter().collect::<BTreeMap<_, _>>() == expected_all)
            .unwrap_or(false)
    })
    .await?;
    assert_eq!(app.restored_records(), 90);
    app.close().await?;
    broker.stop().await;
    Ok(())
}

/// Input topic `lines<n>`, and two word-count instances of application `wc<n>` (writing to
/// `out-lines<n>`) started and each owning some of the tasks. The directories hold their state.
async fn two_instances(
    broker: &TestBroker,
    n: &str,
    session_timeout_ms: u32,
) -> Result<(KafkaStreams, KafkaStreams, [tempfile::TempDir; 2]), TestError> {
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    let (input, output, app) = (
        format!("lines{n}"),
        format!("out-lines{n}"),
        format!("wc{n}"),
    );
    create_input(&admin, &input).await?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut a = KafkaStreams::new(
        word_count(&input, &output)?,
        config(broker, &app, &dirs[0], session_timeout_ms)?,
    );
    let mut b = KafkaStreams::new(
        word_count(&input, &output)?,
        config(broker, &app, &dirs[1], session_timeout_ms)?,
    );
    a.start().await?;
    b.start().await?;
    wait_for("both instances to own tasks", || {
        !a.tasks().is_empty()
            && !b.tasks().is_empty()
            && a.tasks().len() + b.tasks().len() == PARTITIONS as usize
    })
    .await?;
    Ok((a, b, dirs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_tasks_and_count_exactly() -> TestResult {
    let broker = TestBroker::start().await?;
    let (a, b, _dirs) = two_instances(&broker, "2", 30_000).await?;

    let (input, expected) = lines(0, 150);
    produce(&broker, "lines2", 0, &input).await?;
    let got = read_counts(&broker, "out-lines2", |c| c == &expected).await?;
    assert_eq!(got, expected);
    assert!(
        a.processed() > 0 && b.processed() > 0,
        "both instances worked"
    );
    a.close().await?;
    b.close().await?;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_hands_its_tasks_over_with_restored_state() -> TestResult {
    let broker = TestBroker::start().await?;
    let (a, b, _dirs) = two_instances(&broker, "3", 6_000).await?;

    let (first, first_counts) = lines(0, 150);
    produce(&broker, "lines3", 0, &first).await?;
    read_counts(&broker, "out-lines3", |c| c == &first_counts).await?;
    wait_for("instance A to commit", || a.commits() > 0).await?;

    // Kill A mid-stream: no commit, no LeaveGroup; the group notices after the session
    // timeout and gives A's tasks to B.
    let a_tasks = a.tasks();
    drop(a);
    let (second, second_counts) = lines(150, 300);
    produce(&broker, "lines3", 150, &second).await?;
    wait_for("B to own every task", || {
        b.tasks().len() == PARTITIONS as usize
    })
    .await?;

    let mut expected = first_counts.clone();
    for (w, c) in second_counts {
        *expected.entry(w).or_insert(0) += c;
    }
    let got = read_counts(&broker, "out-lines3", |c| {
        expected
            .iter()
            .all(|(w, n)| c.get(w).is_some_and(|got| got >= n))
    })
    .await?;
    for (w, n) in &expected {
        let g = got.get(w).copied().unwrap_or(0);
        assert!(g >= *n, "{w}: counted {g}, expected at least {n}");
    }
    assert!(!a_tasks.is_empty());
    assert!(
        b.restored_records() > 0,
        "B restored A's stores from the changelog"
    );
    // B's store holds every word, restored counts included.
    let store = b.store::<String, i64>("counts");
    let local: BTreeMap<String, i64> = store.all()?.into_iter().collect();
    for (w, n) in &expected {
        assert!(local.get(w).copied().unwrap_or(0) >= *n, "{w} in B's store");
    }
    b.close().await?;
    broker.stop().await;
    Ok(())
}
