//! The PostgreSQL connectors against a real (throwaway) PostgreSQL server and an in-process
//! broker: the source copies rows, including rows inserted while it runs and after a worker
//! restart, without duplicates; the sink inserts and upserts by primary key.

mod connect_support;
mod in_process;

use connect_support::{eventually, read_topic, PgServer};
use fjord_client::{Producer, ProducerConfig, ProducerRecord};
use fjord_connect::config::parse_properties;
use fjord_connect::runtime::start_standalone;
use in_process::{TestBroker, TestError};

fn worker_props(broker: &TestBroker, offsets: &std::path::Path) -> fjord_connect::config::Props {
    parse_properties(&format!(
        "bootstrap.servers={}\nlisteners=http://127.0.0.1:0\n\
         key.converter=org.apache.kafka.connect.storage.StringConverter\n\
         value.converter=org.apache.kafka.connect.json.JsonConverter\n\
         offset.storage.file.filename={}\noffset.flush.interval.ms=100\n",
        broker.bootstrap(),
        offsets.display()
    ))
}

/// The `id` of every record (JSON envelope payload) of the topic, in order.
fn ids(records: &[fjord_client::ConsumerRecord]) -> Vec<i64> {
    records
        .iter()
        .map(|r| {
            let v: serde_json::Value =
                serde_json::from_slice(r.value.as_deref().unwrap_or(b"null")).expect("JSON value");
            assert_eq!(v["schema"]["type"], "struct", "{v}");
            v["payload"]["id"].as_i64().expect("an integer id")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_source_copies_new_rows_and_resumes_after_restart() -> Result<(), TestError> {
    let pg = PgServer::start();
    pg.sql("CREATE TABLE orders (id SERIAL PRIMARY KEY, item TEXT NOT NULL, qty INT, price NUMERIC(8,2))");
    pg.sql("INSERT INTO orders (item, qty, price) VALUES ('apple', 1, 0.5), ('pear', 2, 1.25), ('fig', 3, 2)");
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let offsets = dir.path().join("offsets");
    let source = parse_properties(&format!(
        "name=pg-source\nconnector.class=PostgresSource\nconnection.url={}\nconnection.user=fjord\n\
         table.whitelist=orders\nmode=incrementing\nincrementing.column.name=id\n\
         topic.prefix=pg-\npoll.interval.ms=100\n",
        pg.jdbc_url()
    ));
    let worker = start_standalone(worker_props(&broker, &offsets), vec![source.clone()]).await?;
    let records = read_topic(&broker.bootstrap(), "pg-orders", 1, 3).await;
    assert_eq!(ids(&records), vec![1, 2, 3]);
    let first: serde_json::Value = serde_json::from_slice(records[1].value.as_deref().unwrap())?;
    assert_eq!(first["payload"]["item"], "pear");
    assert_eq!(first["payload"]["qty"], 2);
    assert_eq!(first["payload"]["price"], "1.25", "NUMERIC is read as text");

    // Rows inserted while the connector runs.
    pg.sql("INSERT INTO orders (item, qty) VALUES ('kiwi', 4), ('lime', 5)");
    let records = read_topic(&broker.bootstrap(), "pg-orders", 1, 5).await;
    assert_eq!(ids(&records), vec![1, 2, 3, 4, 5]);
    worker.shutdown().await;

    // Rows inserted while no worker runs arrive after the restart, and nothing is re-sent.
    pg.sql("INSERT INTO orders (item, qty) VALUES ('plum', 6), ('date', 7)");
    let worker = start_standalone(worker_props(&broker, &offsets), vec![source]).await?;
    let records = read_topic(&broker.bootstrap(), "pg-orders", 1, 7).await;
    assert_eq!(ids(&records), vec![1, 2, 3, 4, 5, 6, 7]);
    let status = worker.worker().status("pg-source")?;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    // No duplicates show up afterwards either.
    pg.sql("INSERT INTO orders (item, qty) VALUES ('last', 8)");
    let records = read_topic(&broker.bootstrap(), "pg-orders", 1, 8).await;
    assert_eq!(ids(&records), (1..=8).collect::<Vec<_>>());
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_source_timestamp_incrementing_mode() -> Result<(), TestError> {
    let pg = PgServer::start();
    pg.sql("CREATE TABLE events (id BIGINT PRIMARY KEY, at TIMESTAMPTZ NOT NULL, what TEXT)");
    pg.sql("INSERT INTO events VALUES (1, now() - interval '1 hour', 'a'), (2, now() - interval '1 hour', 'b'), (3, now() - interval '2 hours', 'c')");
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let source = parse_properties(&format!(
        "name=pg-ts\nconnector.class=io.fjord.connect.postgres.PostgresSourceConnector\n\
         connection.url={}\nconnection.user=fjord\ntable.whitelist=events\n\
         mode=timestamp+incrementing\ntimestamp.column.name=at\nincrementing.column.name=id\n\
         topic.prefix=ts-\npoll.interval.ms=100\n",
        pg.jdbc_url()
    ));
    let worker =
        start_standalone(worker_props(&broker, &dir.path().join("o")), vec![source]).await?;
    // Ordered by timestamp, then id.
    assert_eq!(
        ids(&read_topic(&broker.bootstrap(), "ts-events", 1, 3).await),
        vec![3, 1, 2]
    );
    pg.sql("INSERT INTO events VALUES (4, now() - interval '1 second', 'd')");
    assert_eq!(
        ids(&read_topic(&broker.bootstrap(), "ts-events", 1, 4).await),
        vec![3, 1, 2, 4]
    );
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sink_auto_creates_the_table_and_upserts() -> Result<(), TestError> {
    let pg = PgServer::start();
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let sink = parse_properties(&format!(
        "name=pg-sink\nconnector.class=PostgresSink\nconnection.url={}\nconnection.user=fjord\n\
         topics=customers\ninsert.mode=upsert\npk.mode=record_value\npk.fields=id\n\
         auto.create=true\n",
        pg.jdbc_url()
    ));
    let worker = start_standalone(worker_props(&broker, &dir.path().join("o")), vec![sink]).await?;
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    let schema = serde_json::json!({"type": "struct", "optional": false, "fields": [
        {"field": "id", "type": "int32", "optional": false},
        {"field": "name", "type": "string", "optional": true},
        {"field": "vip", "type": "boolean", "optional": true}
    ]});
    let send = |id: i32, name: &str, vip: bool| {
        let value =
            serde_json::json!({"schema": schema, "payload": {"id": id, "name": name, "vip": vip}});
        ProducerRecord::new("customers")
            .key(id.to_string())
            .value(value.to_string())
    };
    for r in [
        send(1, "ann", false),
        send(2, "bob", false),
        send(1, "ann b.", true),
    ] {
        producer.send(r).await?.await?;
    }
    let rows = eventually(60, "two rows with the upserted name", || async {
        let out = pg
            .try_sql("SELECT id, name, vip FROM customers ORDER BY id")
            .ok()?;
        (out == "1|ann b.|t\n2|bob|f").then_some(out)
    })
    .await;
    assert_eq!(rows.lines().count(), 2);
    let types = pg.sql("SELECT data_type FROM information_schema.columns WHERE table_name = 'customers' ORDER BY ordinal_position");
    assert_eq!(types, "integer\ntext\nboolean");
    // An update of a row written earlier replaces it.
    producer.send(send(2, "robert", false)).await?.await?;
    eventually(60, "bob renamed", || async {
        (pg.sql("SELECT name FROM customers WHERE id = 2") == "robert").then_some(())
    })
    .await;
    let status = worker.worker().status("pg-sink")?;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    producer.close().await?;
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_source_bulk_mode_copies_the_whole_table() -> Result<(), TestError> {
    let pg = PgServer::start();
    pg.sql("CREATE TABLE colours (id INT, name VARCHAR(10), hex BYTEA, ok BOOLEAN, w REAL)");
    pg.sql("INSERT INTO colours VALUES (1, 'red', '\\xff0000', true, 0.5), (2, 'blue', NULL, false, NULL)");
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let source = parse_properties(&format!(
        "name=pg-bulk\nconnector.class=PostgresSource\nconnection.url={}\nconnection.user=fjord\n\
         table.whitelist=colours\nmode=bulk\ntopic.prefix=bulk-\npoll.interval.ms=60000\n",
        pg.jdbc_url()
    ));
    let worker =
        start_standalone(worker_props(&broker, &dir.path().join("o")), vec![source]).await?;
    let records = read_topic(&broker.bootstrap(), "bulk-colours", 1, 2).await;
    assert_eq!(ids(&records), vec![1, 2]);
    let red: serde_json::Value = serde_json::from_slice(records[0].value.as_deref().unwrap())?;
    assert_eq!(red["payload"]["hex"], "/wAA", "bytea as base64");
    assert_eq!(red["payload"]["ok"], true);
    assert_eq!(red["payload"]["w"], 0.5);
    let fields: Vec<&str> = red["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["int32", "string", "bytes", "boolean", "float"]);
    assert_eq!(red["schema"]["name"], "colours");
    let blue: serde_json::Value = serde_json::from_slice(records[1].value.as_deref().unwrap())?;
    assert_eq!(blue["payload"]["hex"], serde_json::Value::Null);
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sink_upserts_by_record_key_into_an_existing_table() -> Result<(), TestError> {
    let pg = PgServer::start();
    pg.sql("CREATE TABLE kv_prices (sku TEXT PRIMARY KEY, price NUMERIC(10,2), seen TIMESTAMPTZ)");
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let sink = parse_properties(&format!(
        "name=pg-kv\nconnector.class=io.fjord.connect.postgres.PostgresSinkConnector\n\
         connection.url={}\nconnection.user=fjord\ntopics=prices\ntable.name.format=kv_${{topic}}\n\
         insert.mode=upsert\npk.mode=record_key\npk.fields=sku\n\
         value.converter.schemas.enable=false\n",
        pg.jdbc_url()
    ));
    let worker = start_standalone(worker_props(&broker, &dir.path().join("o")), vec![sink]).await?;
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    for (sku, price) in [("apple", "1.5"), ("pear", "2"), ("apple", "1.75")] {
        let value = format!(r#"{{"price": {price}, "seen": 86400000}}"#);
        producer
            .send(ProducerRecord::new("prices").key(sku).value(value))
            .await?
            .await?;
    }
    eventually(60, "upserted prices", || async {
        let rows = pg
            .try_sql("SELECT sku, price, extract(epoch from seen) FROM kv_prices ORDER BY sku")
            .ok()?;
        (rows == "apple|1.75|86400.000000\npear|2.00|86400.000000").then_some(())
    })
    .await;
    producer.close().await?;
    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}
