//! Fjord Connect standalone mode against an in-process broker: FileStreamSource →
//! topic → FileStreamSink round trip, offsets surviving a worker restart, transforms.

mod connect_support;
mod in_process;

use fjord_connect::config::{parse_properties, Props};
use fjord_connect::runtime::start_standalone;
use in_process::{TestBroker, TestError};
use std::path::Path;
use std::time::{Duration, Instant};

fn props(text: &str) -> Props {
    parse_properties(text)
}

/// Waits until `file` holds `n` lines (or the deadline passes) and returns its lines.
async fn wait_for_lines(file: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn worker_props(broker: &TestBroker, offsets: &Path) -> Props {
    props(&format!(
        "bootstrap.servers={}\nlisteners=http://127.0.0.1:0\n\
         key.converter=org.apache.kafka.connect.storage.StringConverter\n\
         value.converter=org.apache.kafka.connect.json.JsonConverter\n\
         value.converter.schemas.enable=false\n\
         offset.storage.file.filename={}\noffset.flush.interval.ms=100\n",
        broker.bootstrap(),
        offsets.display()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_to_file_sink_round_trip_and_resume_after_restart() -> Result<(), TestError> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    let offsets = dir.path().join("connect.offsets");
    std::fs::write(&input, "alpha\nbeta\ngamma\n")?;

    let source = props(&format!(
        "name=file-source\nconnector.class=FileStreamSource\ntasks.max=1\nfile={}\ntopic=lines\n",
        input.display()
    ));
    let sink = props(&format!(
        "name=file-sink\nconnector.class=org.apache.kafka.connect.file.FileStreamSinkConnector\n\
         tasks.max=1\nfile={}\ntopics=lines\n",
        output.display()
    ));
    let worker = start_standalone(
        worker_props(&broker, &offsets),
        vec![source.clone(), sink.clone()],
    )
    .await?;
    assert_eq!(
        wait_for_lines(&output, 3).await,
        vec!["alpha", "beta", "gamma"]
    );

    // Lines appended while the connector runs flow through too.
    std::fs::write(&input, "alpha\nbeta\ngamma\ndelta\n")?;
    assert_eq!(wait_for_lines(&output, 4).await.len(), 4);
    worker.shutdown().await;

    // The source offset was stored in the offsets file: a new worker resumes after "delta".
    let stored = std::fs::read_to_string(&offsets)?;
    assert!(stored.contains("file-source"), "{stored}");
    std::fs::write(&input, "alpha\nbeta\ngamma\ndelta\nepsilon\n")?;
    let worker = start_standalone(worker_props(&broker, &offsets), vec![source, sink]).await?;
    let lines = wait_for_lines(&output, 5).await;
    assert_eq!(lines, vec!["alpha", "beta", "gamma", "delta", "epsilon"]);
    // Nothing more arrives (no re-read of the file from the start).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(wait_for_lines(&output, 5).await.len(), 5);
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transforms_apply_between_source_and_sink() -> Result<(), TestError> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "one\ntwo\nthree\n")?;
    let offsets = dir.path().join("offsets");
    // The source routes "raw-events" to "events" (the sink only reads "events"); the sink's
    // Filter drops records whose topic does NOT match "events" (negated predicate), i.e. none.
    let source = props(&format!(
        "name=src\nconnector.class=FileStreamSource\nfile={}\ntopic=raw-events\n\
         transforms=route\ntransforms.route.type=org.apache.kafka.connect.transforms.RegexRouter\n\
         transforms.route.regex=raw-(.*)\ntransforms.route.replacement=$1\n",
        input.display()
    ));
    let sink = props(&format!(
        "name=sink\nconnector.class=FileStreamSink\nfile={}\ntopics=events\n\
         transforms=drop\ntransforms.drop.type=Filter\ntransforms.drop.predicate=isEvents\n\
         transforms.drop.negate=true\npredicates=isEvents\n\
         predicates.isEvents.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches\n\
         predicates.isEvents.pattern=events\n",
        output.display()
    ));
    let worker = start_standalone(worker_props(&broker, &offsets), vec![source, sink]).await?;
    let lines = wait_for_lines(&output, 3).await;
    assert_eq!(lines, vec!["one", "two", "three"]);
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sink_posts_batches_and_retries() -> Result<(), TestError> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3}\n")?;
    // The endpoint fails twice before accepting: the sink retries with back-off.
    let server = connect_support::HttpCapture::start(2).await;
    let source = props(&format!(
        "name=src\nconnector.class=FileStreamSource\nfile={}\ntopic=http-events\n\
         value.converter=org.apache.kafka.connect.storage.StringConverter\n",
        input.display()
    ));
    let sink = props(&format!(
        "name=http\nconnector.class=HttpSink\ntopics=http-events\nhttp.api.url={}\n\
         retry.backoff.ms=10\nbatch.max.size=2\n\
         value.converter=org.apache.kafka.connect.json.JsonConverter\n\
         value.converter.schemas.enable=false\n",
        server.url
    ));
    let offsets = dir.path().join("offsets");
    let worker = start_standalone(worker_props(&broker, &offsets), vec![source, sink]).await?;
    let values = connect_support::eventually(60, "three posted records", || async {
        let v = server.values();
        (v.len() >= 3).then_some(v)
    })
    .await;
    assert_eq!(
        values[..3],
        [
            serde_json::json!({"n": 1}),
            serde_json::json!({"n": 2}),
            serde_json::json!({"n": 3})
        ]
    );
    assert!(
        server.hits.load(std::sync::atomic::Ordering::SeqCst) >= 4,
        "two failures, then batches"
    );
    assert!(server
        .bodies
        .lock()
        .expect("lock")
        .iter()
        .all(|b| b.as_array().is_some_and(|a| a.len() <= 2)));
    let status = worker.worker().status("http")?;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sink_put_commits_nothing_and_a_restarted_task_redelivers() -> Result<(), TestError>
{
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "\"a\"\n\"b\"\n\"c\"\n")?;
    // Two failures with one retry allowed: the first put fails and so does the task.
    let server = connect_support::HttpCapture::start(2).await;
    let source = props(&format!(
        "name=src\nconnector.class=FileStreamSource\nfile={}\ntopic=redeliver\n\
         value.converter=org.apache.kafka.connect.storage.StringConverter\n",
        input.display()
    ));
    let sink = props(&format!(
        "name=http\nconnector.class=HttpSink\ntopics=redeliver\nhttp.api.url={}\n\
         max.retries=1\nretry.backoff.ms=10\n\
         value.converter=org.apache.kafka.connect.json.JsonConverter\n\
         value.converter.schemas.enable=false\n",
        server.url
    ));
    let worker = start_standalone(
        worker_props(&broker, &dir.path().join("offsets")),
        vec![source, sink],
    )
    .await?;
    let trace = connect_support::eventually(60, "the sink task failing", || async {
        let st = worker.worker().status("http").ok()?;
        (st["tasks"][0]["state"] == "FAILED").then(|| st["tasks"][0]["trace"].to_string())
    })
    .await;
    assert!(trace.contains("503"), "{trace}");
    assert!(server.values().is_empty());
    // The failed batch's offsets were not committed: the restarted task gets the records again.
    worker.worker().restart_task("http", 0).await?;
    let values = connect_support::eventually(60, "records after the restart", || async {
        let v = server.values();
        (v.len() >= 3).then_some(v)
    })
    .await;
    assert_eq!(
        values[..3],
        [
            serde_json::json!("a"),
            serde_json::json!("b"),
            serde_json::json!("c")
        ]
    );
    let st = worker.worker().status("http")?;
    assert_eq!(st["tasks"][0]["state"], "RUNNING", "{st}");
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_offsets_are_not_stored_when_records_are_not_acknowledged() -> Result<(), TestError>
{
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "lost?\n")?;
    let offsets = dir.path().join("offsets");
    // Kafka topic names cannot contain spaces: the broker refuses the records.
    let source = props(&format!(
        "name=bad-src\nconnector.class=FileStreamSource\nfile={}\ntopic=not a topic\n",
        input.display()
    ));
    let mut worker = worker_props(&broker, &offsets);
    worker.insert("producer.max.block.ms".into(), "2000".into());
    worker.insert("producer.delivery.timeout.ms".into(), "3000".into());
    worker.insert("producer.request.timeout.ms".into(), "2000".into());
    worker.insert("producer.linger.ms".into(), "0".into());
    let running = start_standalone(worker, vec![source]).await?;
    let trace = connect_support::eventually(60, "the source task failing", || async {
        let st = running.worker().status("bad-src").ok()?;
        (st["tasks"][0]["state"] == "FAILED").then(|| st["tasks"][0]["trace"].to_string())
    })
    .await;
    assert!(trace.to_lowercase().contains("topic"), "{trace}");
    let stored = std::fs::read_to_string(&offsets).unwrap_or_default();
    assert!(
        !stored.contains("bad-src"),
        "offsets stored without an ack: {stored}"
    );
    running.shutdown().await;
    broker.stop().await;
    Ok(())
}
