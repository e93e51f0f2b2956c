//! Tours the admin client: cluster, topics, configs, offsets and consumer groups.
//!
//! ```text
//! cargo run -p fjord-client --example admin -- [bootstrap]
//! ```

use fjord_client::{
    Admin, AdminConfig, AlterConfigOp, ConfigResource, ErrorCode, NewTopic, OffsetSpec,
    TopicPartition,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let admin = Admin::new(AdminConfig::new(&bootstrap))?;

    let cluster = admin.describe_cluster().await?;
    println!(
        "cluster {} (controller {})",
        cluster.cluster_id, cluster.controller_id
    );
    for b in &cluster.brokers {
        println!("  broker {} at {}:{}", b.id, b.host, b.port);
    }

    let topic = "fjord-admin-example";
    match admin
        .create_topics(&[NewTopic::new(topic, 3).config("retention.ms", "86400000")])
        .await
    {
        Ok(()) => println!("created {topic}"),
        Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => println!("{topic} exists"),
        Err(e) => return Err(e.into()),
    }
    for t in admin.describe_topics(&[topic]).await? {
        println!("{} ({} partitions)", t.name, t.partitions.len());
        for p in &t.partitions {
            println!(
                "  partition {} leader {} isr {:?}",
                p.partition, p.leader, p.isr
            );
        }
    }

    let resource = ConfigResource::Topic(topic.into());
    admin
        .incremental_alter_configs(
            &resource,
            &[AlterConfigOp::Set(
                "retention.ms".into(),
                "172800000".into(),
            )],
        )
        .await?;
    for (_, entries) in admin.describe_configs(&[resource]).await? {
        for e in entries.iter().filter(|e| !e.is_default) {
            println!("  {} = {:?}", e.name, e.value);
        }
    }

    let tp = TopicPartition::new(topic, 0);
    let offsets = admin
        .list_offsets(&[(tp.clone(), OffsetSpec::Earliest)])
        .await?;
    let latest = admin
        .list_offsets(&[(tp.clone(), OffsetSpec::Latest)])
        .await?;
    println!(
        "{tp}: earliest {} latest {}",
        offsets[&tp].offset, latest[&tp].offset
    );

    println!("topics: {:?}", admin.list_topics(false).await?);
    for g in admin.list_groups().await? {
        println!("group {} ({}, {:?})", g.group_id, g.protocol_type, g.state);
        for d in admin.describe_groups(&[g.group_id.as_str()]).await? {
            for m in &d.members {
                println!(
                    "  member {} from {}: {:?}",
                    m.member_id, m.client_host, m.assignment
                );
            }
        }
        for (tp, offset) in admin.list_consumer_group_offsets(&g.group_id).await? {
            println!("  committed {tp} = {offset}");
        }
    }
    admin.delete_topics(&[topic]).await?;
    println!("deleted {topic}");
    Ok(())
}
