//! The consumer: group membership or manual assignment, positions, prefetching fetches,
//! commits.
//!
//! `poll` drives everything on the caller's task: it advances a running rebalance (the join
//! itself runs on a spawned task so `poll(timeout)` returns on time even while other members
//! are slow to join), runs the rebalance listener, initialises positions (committed offsets,
//! else `auto.offset.reset` through ListOffsets), returns buffered records and sends the next
//! fetches before returning them, so the network works while the caller processes records.
//! At most one fetch is in flight per broker; a partition with buffered records is not
//! fetched again until they are consumed.

pub(crate) mod assignor;
mod fetch;
pub(crate) mod group;

use crate::cluster::{needs_metadata_refresh, Cluster, ConnKey, Metadata};
use crate::config::{ConsumerConfig, ConsumerSettings, IsolationLevel, OffsetReset};
use crate::error::{ClientError, Result};
use crate::offsets::{list_offsets, ListedOffset, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::records::Header;
use bytes::Bytes;
use fetch::{build_request, CompletedFetch, FetchParams, FetchTarget};
use fjord_common::{ErrorCode, TopicPartition};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use group::{Group, JoinOutcome, JoinRequest, MemberState};
use kafka_protocol::messages::{ApiKey, FetchResponse};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A record returned by [`Consumer::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic (shared by the records of a partition).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// CreateTime, or LogAppendTime for such topics (ms since the epoch).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None`: tombstone).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
}

impl ConsumerRecord {
    /// The record's topic-partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(&*self.topic, self.partition)
    }
}

/// Called on the consumer's task when the group changes its partitions.
///
/// With `enable.auto.commit`, the consumer commits consumed offsets of revoked partitions
/// before `on_partitions_revoked` runs.
pub trait RebalanceListener: Send {
    /// Partitions taken away in an orderly rebalance (commit their work here).
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
    /// Partitions given to this member (new ones only with cooperative rebalancing).
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
    /// Partitions lost without a chance to commit (the member was fenced out of the group).
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(partitions);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Default)]
struct PartitionState {
    position: Option<i64>,
    epoch: Option<i32>,
    paused: bool,
    reset: Option<Reset>,
    high_watermark: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subscription {
    None,
    Topics(Vec<String>),
    Manual,
}

enum Event {
    Fetched {
        node: i32,
        targets: Vec<FetchTarget>,
        result: Result<FetchResponse>,
    },
    Connected {
        node: i32,
    },
    Metadata(Result<Arc<Metadata>>),
    Committed {
        partitions: Vec<TopicPartition>,
        result: Result<HashMap<TopicPartition, Option<group::Committed>>>,
    },
    Listed {
        requests: Vec<(TopicPartition, i64)>,
        result: Result<HashMap<TopicPartition, ListedOffset>>,
    },
}

/// The outcome of an asynchronous commit.
#[must_use = "a commit handle reports whether the commit succeeded"]
pub struct CommitHandle(JoinHandle<Result<()>>);

impl std::fmt::Debug for CommitHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitHandle").finish()
    }
}

impl Future for CommitHandle {
    type Output = Result<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.0).poll(cx) {
            Poll::Ready(Ok(r)) => Poll::Ready(r),
            Poll::Ready(Err(_)) => Poll::Ready(Err(ClientError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A Kafka consumer: `subscribe` to topics as a group member, or `assign` partitions, then
/// `poll` for records.
///
/// ```no_run
/// # async fn demo() -> fjord_client::Result<()> {
/// use fjord_client::{Consumer, ConsumerConfig, OffsetReset};
/// use std::time::Duration;
/// let mut consumer = Consumer::new(
///     ConsumerConfig::new("127.0.0.1:9092")
///         .group_id("billing")
///         .auto_offset_reset(OffsetReset::Earliest),
/// )?;
/// consumer.subscribe(&["orders"], None)?;
/// loop {
///     for record in consumer.poll(Duration::from_millis(500)).await? {
///         println!("{}-{}@{}", record.topic, record.partition, record.offset);
///     }
/// }
/// # }
/// ```
pub struct Consumer {
    settings: Arc<ConsumerSettings>,
    cluster: Arc<Cluster>,
    subscription: Subscription,
    listener: Option<Box<dyn RebalanceListener>>,
    group: Option<Arc<Group>>,
    cooperative: bool,
    heartbeat: Option<JoinHandle<()>>,
    join: Option<JoinHandle<Result<JoinOutcome>>>,
    /// Partition counts the leader assigned from, and the metadata version last checked.
    assigned_from: HashMap<String, i32>,
    /// Topics sent in the running (or last) JoinGroup.
    joined_topics: Vec<String>,
    checked_metadata: u64,
    assignment: BTreeMap<TopicPartition, PartitionState>,
    events: FuturesUnordered<BoxFuture<'static, Event>>,
    node_in_flight: HashSet<i32>,
    tps_in_flight: HashSet<TopicPartition>,
    connecting: HashSet<i32>,
    refreshing: bool,
    buffered: VecDeque<CompletedFetch>,
    topic_names: HashMap<String, Arc<str>>,
    next_auto_commit: Instant,
    pending_error: Option<ClientError>,
    /// Partitions whose committed offset or reset offset is being looked up.
    lookups: HashSet<TopicPartition>,
    next_lookup: Instant,
    closed: bool,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("subscription", &self.subscription)
            .field("assignment", &self.assignment.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(g) = &self.group {
            g.state.lock().closed = true;
        }
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if let Some(h) = self.join.take() {
            h.abort();
        }
        self.cluster.close();
    }
}

impl Consumer {
    /// Creates a consumer (connections are made lazily). Must run inside a tokio runtime.
    pub fn new(config: ConsumerConfig) -> Result<Consumer> {
        let settings = Arc::new(config.resolve()?);
        tokio::runtime::Handle::try_current().map_err(|_| {
            ClientError::InvalidArgument(
                "Consumer::new must be called inside a tokio runtime".into(),
            )
        })?;
        let cluster = Cluster::new(settings.net.clone());
        let group = settings
            .group_id
            .clone()
            .map(|g| Group::new(g, settings.group_instance_id.clone()));
        let cooperative = settings.assignors.iter().all(|a| a.is_cooperative());
        Ok(Consumer {
            next_auto_commit: Instant::now() + settings.auto_commit_interval,
            settings,
            cluster,
            subscription: Subscription::None,
            listener: None,
            group,
            cooperative,
            heartbeat: None,
            join: None,
            assigned_from: HashMap::new(),
            joined_topics: Vec::new(),
            checked_metadata: 0,
            assignment: BTreeMap::new(),
            events: FuturesUnordered::new(),
            node_in_flight: HashSet::new(),
            tps_in_flight: HashSet::new(),
            connecting: HashSet::new(),
            refreshing: false,
            buffered: VecDeque::new(),
            topic_names: HashMap::new(),
            pending_error: None,
            lookups: HashSet::new(),
            next_lookup: Instant::now(),
            closed: false,
        })
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed {
            Err(ClientError::Closed)
        } else {
            Ok(())
        }
    }

    /// Joins the consumer group and consumes `topics`; partitions are assigned by the group
    /// (`partition.assignment.strategy`). Needs `group.id`. Replaces an earlier subscription.
    pub fn subscribe<S: AsRef<str>>(
        &mut self,
        topics: &[S],
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> Result<()> {
        self.ensure_open()?;
        let group = self.group.clone().ok_or_else(|| {
            ClientError::invalid_config(
                "group.id",
                "",
                "subscribe needs a group.id (or use assign)",
            )
        })?;
        if self.subscription == Subscription::Manual {
            return Err(ClientError::InvalidArgument(
                "subscribe and assign are mutually exclusive: unsubscribe first".into(),
            ));
        }
        let mut topics: Vec<String> = topics.iter().map(|t| t.as_ref().to_string()).collect();
        topics.sort();
        topics.dedup();
        if topics.iter().any(String::is_empty) {
            return Err(ClientError::InvalidArgument("empty topic name".into()));
        }
        if listener.is_some() {
            self.listener = listener;
        }
        // Partitions of topics no longer subscribed are revoked at once.
        let dropped: Vec<TopicPartition> = self
            .assignment
            .keys()
            .filter(|tp| !topics.contains(&tp.topic))
            .cloned()
            .collect();
        if !dropped.is_empty() {
            self.remove_partitions(&dropped);
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_revoked(&dropped);
            }
        }
        self.cluster.set_interest(topics.iter().cloned());
        self.subscription = Subscription::Topics(topics);
        group.state.lock().rejoin_needed = true;
        if self.heartbeat.is_none() {
            self.heartbeat = Some(tokio::spawn(group::heartbeat_loop(
                self.cluster.clone(),
                group,
                self.settings.clone(),
            )));
        }
        Ok(())
    }

    /// Consumes exactly these partitions, without group membership. Positions of partitions
    /// kept from an earlier assignment are kept.
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.ensure_open()?;
        if matches!(self.subscription, Subscription::Topics(_)) {
            return Err(ClientError::InvalidArgument(
                "subscribe and assign are mutually exclusive: unsubscribe first".into(),
            ));
        }
        let wanted: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
        let dropped: Vec<TopicPartition> = self
            .assignment
            .keys()
            .filter(|tp| !wanted.contains(*tp))
            .cloned()
            .collect();
        self.remove_partitions(&dropped);
        for tp in &wanted {
            self.assignment.entry(tp.clone()).or_default();
        }
        self.cluster.set_interest(
            wanted
                .iter()
                .map(|tp| tp.topic.clone())
                .collect::<BTreeSet<_>>(),
        );
        self.subscription = if wanted.is_empty() {
            Subscription::None
        } else {
            Subscription::Manual
        };
        Ok(())
    }

    /// Leaves the group (revoking partitions) or drops the manual assignment.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        self.ensure_open()?;
        if matches!(self.subscription, Subscription::Topics(_)) {
            self.revoke_all_for_leave().await;
            if let Some(g) = self.group.clone() {
                if let Some(h) = self.join.take() {
                    h.abort();
                }
                let _ = group::leave_group(&self.cluster, &g, "the consumer unsubscribed").await;
                let mut st = g.state.lock();
                st.state = MemberState::Unjoined;
                st.member_id.clear();
                st.generation = -1;
            }
        }
        let all: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        self.remove_partitions(&all);
        self.subscription = Subscription::None;
        Ok(())
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    /// The subscribed topics (empty with a manual assignment).
    pub fn subscription(&self) -> Vec<String> {
        match &self.subscription {
            Subscription::Topics(t) => t.clone(),
            _ => Vec::new(),
        }
    }

    /// The group generation and member id, when in a group.
    pub fn group_metadata(&self) -> Option<(i32, String)> {
        self.group.as_ref().map(|g| {
            let st = g.state.lock();
            (st.generation, st.member_id.clone())
        })
    }

    fn remove_partitions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.assignment.remove(tp);
        }
        let gone: HashSet<&TopicPartition> = partitions.iter().collect();
        self.buffered.retain(|f| !gone.contains(&f.tp));
    }

    fn state_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState> {
        self.assignment
            .get_mut(tp)
            .ok_or_else(|| ClientError::NotAssigned(tp.clone()))
    }

    /// Returns records, waiting up to `timeout` for some. Also drives the group protocol,
    /// auto-commit and position resets.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.ensure_open()?;
        let deadline = Instant::now() + timeout;
        if let Some(g) = &self.group {
            g.state.lock().last_poll = Instant::now();
        }
        loop {
            if let Some(e) = self.pending_error.take() {
                return Err(e);
            }
            self.maybe_auto_commit();
            self.drive_group().await?;
            self.maybe_refresh_metadata(false);
            self.start_position_lookups();
            // Fetches that completed since the last call are buffered now, and the next ones
            // go out before records are decoded: the broker works on them meanwhile.
            while let Some(Some(e)) = self.events.next().now_or_never() {
                self.on_event(e);
            }
            self.send_fetches();
            let records = self.collect_records()?;
            // Again for partitions that held two responses: one was just drained.
            self.send_fetches();
            if !records.is_empty() {
                return Ok(records);
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            self.wait(deadline).await?;
        }
    }

    /// Waits for a fetch, a metadata refresh, a join or a group event, or the deadline.
    async fn wait(&mut self, deadline: Instant) -> Result<()> {
        enum Woke {
            Join(std::result::Result<Result<JoinOutcome>, tokio::task::JoinError>),
            Event(Event),
            Other,
        }
        let woke = {
            let join = &mut self.join;
            let events = &mut self.events;
            let group = self.group.clone();
            let wake = async move {
                match &group {
                    Some(g) => g.wake.notified().await,
                    None => std::future::pending().await,
                }
            };
            let join_done = async move {
                match join.as_mut() {
                    Some(h) => h.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = join_done => Woke::Join(r),
                Some(e) = events.next(), if !events.is_empty() => Woke::Event(e),
                _ = wake => Woke::Other,
                _ = tokio::time::sleep_until(deadline.into()) => Woke::Other,
            }
        };
        match woke {
            Woke::Join(r) => {
                self.join = None;
                self.finish_join(r).await?;
            }
            Woke::Event(e) => self.on_event(e),
            Woke::Other => {}
        }
        while let Some(Some(e)) = self.events.next().now_or_never() {
            self.on_event(e);
        }
        Ok(())
    }

    fn maybe_refresh_metadata(&mut self, urgent: bool) {
        if self.refreshing {
            return;
        }
        let md = self.cluster.metadata();
        let stale = md
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.settings.net.metadata_max_age);
        if !urgent && !stale {
            return;
        }
        self.refreshing = true;
        let cluster = self.cluster.clone();
        let backoff = self.settings.net.retry_backoff;
        self.events.push(
            async move {
                let r = cluster.refresh().await;
                if r.is_err() {
                    tokio::time::sleep(backoff).await;
                }
                Event::Metadata(r)
            }
            .boxed(),
        );
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Metadata(r) => {
                self.refreshing = false;
                if let Err(e) = r {
                    tracing::debug!(error = %e, "consumer metadata refresh failed");
                }
            }
            Event::Connected { node } => {
                self.connecting.remove(&node);
            }
            Event::Committed { partitions, result } => self.on_committed(partitions, result),
            Event::Listed { requests, result } => self.on_listed(requests, result),
            Event::Fetched {
                node,
                targets,
                result,
            } => {
                self.node_in_flight.remove(&node);
                for t in &targets {
                    self.tps_in_flight.remove(&t.tp);
                }
                match result {
                    Ok(response) => self.on_fetch_response(targets, response),
                    Err(e) => {
                        tracing::debug!(node, error = %e, "fetch failed");
                        if needs_metadata_refresh(&e) || e.is_retriable() {
                            self.maybe_refresh_metadata(true);
                        }
                    }
                }
            }
        }
    }

    fn topic_arc(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.topic_names.get(topic) {
            return t.clone();
        }
        let arc: Arc<str> = Arc::from(topic);
        self.topic_names.insert(topic.to_string(), arc.clone());
        arc
    }

    fn on_fetch_response(&mut self, targets: Vec<FetchTarget>, response: FetchResponse) {
        if response.error_code != 0 {
            tracing::debug!(code = response.error_code, "fetch response error");
            self.maybe_refresh_metadata(true);
            return;
        }
        let wanted: HashMap<(&str, i32), i64> = targets
            .iter()
            .map(|t| ((t.tp.topic.as_str(), t.tp.partition), t.offset))
            .collect();
        let read_committed = self.settings.isolation == IsolationLevel::ReadCommitted;
        let mut refresh = false;
        let mut completed = Vec::new();
        for topic in response.responses {
            let name = topic.topic.to_string();
            for p in topic.partitions {
                let Some(&fetch_offset) = wanted.get(&(name.as_str(), p.partition_index)) else {
                    continue;
                };
                let tp = TopicPartition::new(name.as_str(), p.partition_index);
                let code = ErrorCode::from_code(p.error_code);
                match code {
                    ErrorCode::None => {
                        let data = p.records.unwrap_or_default();
                        if let Some(state) = self.assignment.get_mut(&tp) {
                            state.high_watermark = p.high_watermark;
                        }
                        if data.is_empty() {
                            continue;
                        }
                        completed.push((tp, fetch_offset, data, p.aborted_transactions));
                    }
                    ErrorCode::OffsetOutOfRange => {
                        let policy = self.settings.offset_reset;
                        if let Some(state) = self.assignment.get_mut(&tp) {
                            if state.position == Some(fetch_offset) {
                                match policy {
                                    OffsetReset::Earliest => state.reset = Some(Reset::Earliest),
                                    OffsetReset::Latest => state.reset = Some(Reset::Latest),
                                    OffsetReset::None => {
                                        self.pending_error = Some(ClientError::kafka(
                                            p.error_code,
                                            None,
                                            format!("{tp} fetch offset {fetch_offset}"),
                                        ))
                                    }
                                }
                                tracing::debug!(%tp, fetch_offset, "offset out of range; resetting");
                            }
                        }
                    }
                    _ => {
                        tracing::debug!(%tp, %code, "fetch partition error");
                        refresh |=
                            needs_metadata_refresh(&ClientError::kafka(p.error_code, None, ""));
                        if !code.is_retriable() && code != ErrorCode::UnknownTopicOrPartition {
                            self.pending_error = Some(ClientError::kafka(
                                p.error_code,
                                None,
                                format!("fetch {tp}"),
                            ));
                        }
                    }
                }
            }
        }
        for (tp, fetch_offset, data, aborted) in completed {
            let topic = self.topic_arc(&tp.topic);
            self.buffered.push_back(CompletedFetch::new(
                tp,
                topic,
                fetch_offset,
                data,
                read_committed,
                aborted.as_deref(),
                self.settings.check_crcs,
            ));
        }
        if refresh {
            self.maybe_refresh_metadata(true);
        }
    }

    /// Takes up to `max.poll.records` from the buffered fetches.
    fn collect_records(&mut self) -> Result<Vec<ConsumerRecord>> {
        let max = self.settings.max_poll_records;
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(self.buffered.len());
        while let Some(mut f) = self.buffered.pop_front() {
            let Some(state) = self.assignment.get_mut(&f.tp) else {
                continue; // no longer assigned
            };
            if state.paused {
                kept.push_back(f);
                continue;
            }
            if !f.started {
                if state.position != Some(f.fetch_offset) || state.reset.is_some() {
                    continue; // the position moved (seek) since the fetch was sent
                }
                f.started = true;
            }
            if out.len() < max {
                let mut position = state.position.unwrap_or(f.fetch_offset);
                let mut epoch = state.epoch;
                let result = f.take(max - out.len(), &mut position, &mut epoch, &mut out);
                state.position = Some(position);
                state.epoch = epoch;
                if let Err(e) = result {
                    self.buffered = kept;
                    return Err(e);
                }
            }
            if !f.is_drained() {
                kept.push_back(f);
            }
        }
        self.buffered = kept;
        Ok(out)
    }

    /// Sends a fetch to every leader that has fetchable partitions and nothing in flight.
    fn send_fetches(&mut self) {
        let md = self.cluster.metadata();
        // Per partition: how many fetches are buffered and where the last one ends. While one
        // buffered fetch is being drained, the next one is already requested from where it
        // ends (one ahead, no more), so `poll` does not wait a round trip after every fetch.
        let mut buffered: HashMap<&TopicPartition, (usize, Option<i64>)> = HashMap::new();
        for f in &self.buffered {
            let entry = buffered.entry(&f.tp).or_insert((0, None));
            entry.0 += 1;
            entry.1 = f.end_offset;
        }
        let mut by_node: BTreeMap<i32, Vec<FetchTarget>> = BTreeMap::new();
        let mut need_metadata = false;
        for (tp, state) in &self.assignment {
            let Some(position) = state.position else {
                continue;
            };
            if state.paused || state.reset.is_some() || self.tps_in_flight.contains(tp) {
                continue;
            }
            let offset = match buffered.get(tp) {
                None => position,
                Some(&(1, Some(end))) if end > position => end,
                Some(_) => continue,
            };
            match md.leader(&tp.topic, tp.partition) {
                Some((leader, leader_epoch)) => {
                    by_node.entry(leader).or_default().push(FetchTarget {
                        tp: tp.clone(),
                        offset,
                        leader_epoch: (leader_epoch >= 0).then_some(leader_epoch),
                    })
                }
                None => need_metadata = true,
            }
        }
        drop(buffered);
        if need_metadata {
            self.maybe_refresh_metadata(true);
        }
        let params = FetchParams {
            max_wait_ms: group::millis(self.settings.fetch_max_wait),
            min_bytes: self.settings.fetch_min_bytes,
            max_bytes: self.settings.fetch_max_bytes,
            partition_max_bytes: self.settings.max_partition_fetch_bytes,
            isolation_level: self.settings.isolation.wire(),
        };
        for (node, targets) in by_node {
            if self.node_in_flight.contains(&node) || self.connecting.contains(&node) {
                continue;
            }
            let Some(conn) = self.cluster.live_connection(ConnKey::Node(node)) else {
                self.connecting.insert(node);
                let cluster = self.cluster.clone();
                self.events.push(
                    async move {
                        if let Err(e) = cluster.connection(ConnKey::Node(node)).await {
                            tracing::debug!(node, error = %e, "consumer could not connect");
                        }
                        Event::Connected { node }
                    }
                    .boxed(),
                );
                continue;
            };
            let version = match conn.version(ApiKey::Fetch) {
                Ok(v) => v,
                Err(e) => {
                    self.pending_error = Some(e);
                    continue;
                }
            };
            let req = build_request(version, params, &targets);
            let timeout = self.settings.net.request_timeout + self.settings.fetch_max_wait;
            match conn.start(&req, version, timeout) {
                Ok(fut) => {
                    self.node_in_flight.insert(node);
                    for t in &targets {
                        self.tps_in_flight.insert(t.tp.clone());
                    }
                    self.events.push(
                        async move {
                            let result = fut.await;
                            Event::Fetched {
                                node,
                                targets,
                                result,
                            }
                        }
                        .boxed(),
                    );
                }
                Err(e) => tracing::debug!(node, error = %e, "could not send fetch"),
            }
        }
    }

    /// Starts looking up positions for partitions without one (committed offset, else the
    /// reset policy through ListOffsets). Results arrive as events; `poll` never blocks on them.
    fn start_position_lookups(&mut self) {
        if Instant::now() < self.next_lookup {
            return;
        }
        let missing: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|(tp, s)| {
                s.position.is_none() && s.reset.is_none() && !self.lookups.contains(*tp)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        if !missing.is_empty() {
            if self.group.is_some() {
                self.lookups.extend(missing.iter().cloned());
                let (cluster, group, settings) = (
                    self.cluster.clone(),
                    self.group.clone(),
                    self.settings.clone(),
                );
                self.events.push(
                    async move {
                        let deadline = Instant::now() + settings.default_api_timeout;
                        let result =
                            fetch_committed_for(cluster, group, settings, &missing, deadline).await;
                        Event::Committed {
                            partitions: missing,
                            result,
                        }
                    }
                    .boxed(),
                );
            } else {
                for tp in missing {
                    self.apply_reset_policy(tp);
                }
            }
        }
        let resets: Vec<(TopicPartition, i64)> = self
            .assignment
            .iter()
            .filter(|(tp, _)| !self.lookups.contains(*tp))
            .filter_map(|(tp, s)| s.reset.map(|r| (tp.clone(), reset_timestamp(r))))
            .collect();
        if !resets.is_empty() {
            self.lookups.extend(resets.iter().map(|(tp, _)| tp.clone()));
            let cluster = self.cluster.clone();
            let isolation = self.settings.isolation.wire();
            let timeout = self.settings.default_api_timeout;
            self.events.push(
                async move {
                    let result =
                        list_offsets(&cluster, &resets, isolation, Instant::now() + timeout).await;
                    Event::Listed {
                        requests: resets,
                        result,
                    }
                }
                .boxed(),
            );
        }
    }

    /// No committed offset: `auto.offset.reset` decides.
    fn apply_reset_policy(&mut self, tp: TopicPartition) {
        let policy = self.settings.offset_reset;
        let Some(state) = self.assignment.get_mut(&tp) else {
            return;
        };
        match policy {
            OffsetReset::Earliest => state.reset = Some(Reset::Earliest),
            OffsetReset::Latest => state.reset = Some(Reset::Latest),
            OffsetReset::None => self.pending_error = Some(ClientError::NoOffsetForPartition(tp)),
        }
    }

    fn lookup_failed(&mut self, what: &str, e: ClientError) {
        tracing::debug!(error = %e, "{what} failed");
        self.next_lookup = Instant::now() + self.settings.net.retry_backoff;
        if !e.is_retriable() {
            self.pending_error = Some(e);
        }
    }

    fn on_committed(
        &mut self,
        partitions: Vec<TopicPartition>,
        result: Result<HashMap<TopicPartition, Option<group::Committed>>>,
    ) {
        for tp in &partitions {
            self.lookups.remove(tp);
        }
        let committed = match result {
            Ok(c) => c,
            Err(e) => return self.lookup_failed("OffsetFetch", e),
        };
        for tp in partitions {
            let Some(state) = self.assignment.get_mut(&tp) else {
                continue;
            };
            if state.position.is_some() || state.reset.is_some() {
                continue; // seeked meanwhile
            }
            match committed.get(&tp).cloned().flatten() {
                Some(c) => {
                    state.position = Some(c.offset);
                    state.epoch = c.leader_epoch;
                }
                None => self.apply_reset_policy(tp),
            }
        }
    }

    fn on_listed(
        &mut self,
        requests: Vec<(TopicPartition, i64)>,
        result: Result<HashMap<TopicPartition, ListedOffset>>,
    ) {
        for (tp, _) in &requests {
            self.lookups.remove(tp);
        }
        let found = match result {
            Ok(f) => f,
            Err(e) => return self.lookup_failed("ListOffsets", e),
        };
        for (tp, ts) in requests {
            let (Some(state), Some(listed)) = (self.assignment.get_mut(&tp), found.get(&tp)) else {
                continue;
            };
            // Only if nobody seeked meanwhile.
            if state.reset.map(reset_timestamp) == Some(ts) {
                state.position = Some(listed.offset.max(0));
                state.epoch = listed.leader_epoch;
                state.reset = None;
                self.buffered.retain(|f| f.tp != tp);
            }
        }
    }

    /// Advances the group protocol: applies a finished join, starts one when needed.
    async fn drive_group(&mut self) -> Result<()> {
        let Some(group) = self.group.clone() else {
            return Ok(());
        };
        let Subscription::Topics(topics) = self.subscription.clone() else {
            return Ok(());
        };
        if let Some(h) = self.join.as_mut() {
            if !h.is_finished() {
                return Ok(());
            }
            let r = h.await;
            self.join = None;
            self.finish_join(r).await?;
        }
        self.check_metadata_changes(&group);
        let (needs_join, lost) = {
            let st = group.state.lock();
            (
                st.rejoin_needed || st.state == MemberState::Unjoined,
                st.lost,
            )
        };
        if !needs_join {
            return Ok(());
        }
        let owned: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        if lost && !owned.is_empty() {
            tracing::info!(group = %group.group_id, "partitions lost: {owned:?}");
            self.remove_partitions(&owned);
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_lost(&owned);
            }
        } else if !self.cooperative && !owned.is_empty() {
            // Eager protocol: give everything up before joining.
            if self.settings.auto_commit {
                if let Err(e) = self.commit_consumed(&owned).await {
                    tracing::warn!(error = %e, "auto-commit before rebalance failed");
                }
            }
            self.remove_partitions(&owned);
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_revoked(&owned);
            }
        }
        let (generation, reason) = {
            let mut st = group.state.lock();
            st.rejoin_needed = false;
            st.lost = false;
            st.state = MemberState::Rebalancing;
            (
                st.generation,
                format!("rejoining (generation {})", st.generation),
            )
        };
        self.joined_topics = topics.clone();
        let request = JoinRequest {
            topics,
            owned: self.assignment.keys().cloned().collect(),
            generation,
            reason,
        };
        self.join = Some(tokio::spawn(group::join_group(
            self.cluster.clone(),
            group,
            self.settings.clone(),
            request,
        )));
        Ok(())
    }

    /// A leader notices partition count changes of the group's topics and rebalances.
    fn check_metadata_changes(&mut self, group: &Group) {
        let md = self.cluster.metadata();
        if md.version == self.checked_metadata {
            return;
        }
        self.checked_metadata = md.version;
        let leader = group.state.lock().leader;
        if !leader {
            return;
        }
        let Subscription::Topics(topics) = &self.subscription else {
            return;
        };
        let changed = topics.iter().chain(self.assigned_from.keys()).any(|t| {
            let now = md
                .topics
                .get(t)
                .filter(|i| i.error == 0)
                .map(|i| i.partitions.len() as i32);
            match now {
                Some(n) => self.assigned_from.get(t) != Some(&n),
                None => false,
            }
        });
        if changed {
            tracing::info!(group = %group.group_id, "partition counts changed; rebalancing");
            group.state.lock().rejoin_needed = true;
        }
    }

    async fn finish_join(
        &mut self,
        result: std::result::Result<Result<JoinOutcome>, tokio::task::JoinError>,
    ) -> Result<()> {
        let Some(group) = self.group.clone() else {
            return Ok(());
        };
        let outcome = match result {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                let mut st = group.state.lock();
                st.rejoin_needed = true;
                if st.state == MemberState::Rebalancing {
                    st.state = MemberState::Unjoined;
                }
                // Membership churn is handled by rejoining; other errors (protocol mismatch,
                // authorization) are the caller's to see.
                let churn = matches!(
                    e.code(),
                    Some(ErrorCode::UnknownMemberId)
                        | Some(ErrorCode::IllegalGeneration)
                        | Some(ErrorCode::FencedInstanceId)
                        | Some(ErrorCode::RebalanceInProgress)
                );
                if churn {
                    tracing::info!(group = %group.group_id, error = %e, "rejoining the group");
                    return Ok(());
                }
                return Err(e);
            }
            Err(e) => {
                group.state.lock().rejoin_needed = true;
                return Err(ClientError::protocol(format!("join task failed: {e}")));
            }
        };
        let Subscription::Topics(topics) = self.subscription.clone() else {
            return Ok(());
        };
        tracing::info!(
            group = %group.group_id,
            generation = outcome.generation,
            member = %outcome.member_id,
            protocol = %outcome.protocol,
            leader = outcome.leader,
            assignment = ?outcome.assignment,
            "joined group"
        );
        {
            let mut st = group.state.lock();
            st.generation = outcome.generation;
            st.member_id = outcome.member_id.clone();
            st.protocol = Some(outcome.protocol.clone());
            st.leader = outcome.leader;
            st.state = MemberState::Stable;
            st.lost = false;
            // A subscription changed during the round needs another one.
            if self.joined_topics != topics {
                st.rejoin_needed = true;
            }
        }
        if outcome.leader {
            self.assigned_from = outcome.assigned_from;
            self.checked_metadata = self.cluster.metadata().version;
        }
        let new: BTreeSet<TopicPartition> = outcome
            .assignment
            .into_iter()
            .filter(|tp| topics.contains(&tp.topic))
            .collect();
        let owned: BTreeSet<TopicPartition> = self.assignment.keys().cloned().collect();
        let revoked: Vec<TopicPartition> = owned.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&owned).cloned().collect();
        if !revoked.is_empty() {
            if self.settings.auto_commit {
                if let Err(e) = self.commit_consumed(&revoked).await {
                    tracing::warn!(error = %e, "auto-commit of revoked partitions failed");
                }
            }
            self.remove_partitions(&revoked);
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_revoked(&revoked);
            }
            // Cooperative: the revoked partitions go to their new owner in a second round.
            group.state.lock().rejoin_needed = true;
        }
        for tp in &added {
            self.assignment.entry(tp.clone()).or_default();
        }
        if let Some(l) = self.listener.as_mut() {
            l.on_partitions_assigned(&added);
        }
        Ok(())
    }

    fn maybe_auto_commit(&mut self) {
        if !self.settings.auto_commit || Instant::now() < self.next_auto_commit {
            return;
        }
        self.next_auto_commit = Instant::now() + self.settings.auto_commit_interval;
        let stable = self
            .group
            .as_ref()
            .is_some_and(|g| g.state.lock().state == MemberState::Stable)
            || self.subscription == Subscription::Manual;
        if !stable {
            return;
        }
        let offsets = self.consumed_offsets(None);
        if offsets.is_empty() {
            return;
        }
        let handle = self.spawn_commit(offsets);
        tokio::spawn(async move {
            if let Err(e) = handle.await {
                tracing::debug!(error = %e, "auto-commit failed");
            }
        });
    }

    /// Positions of assigned partitions (all, or `only`), as commit entries.
    fn consumed_offsets(&self, only: Option<&[TopicPartition]>) -> HashMap<TopicPartition, i64> {
        self.assignment
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(tp)))
            .filter_map(|(tp, s)| s.position.map(|p| (tp.clone(), p)))
            .collect()
    }

    async fn commit_consumed(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let offsets = self.consumed_offsets(Some(partitions));
        if offsets.is_empty() {
            return Ok(());
        }
        self.commit_offsets_sync(offsets).await
    }

    fn commit_context(&self) -> Result<(Arc<Group>, i32, String)> {
        let group = self.group.clone().ok_or_else(|| {
            ClientError::invalid_config("group.id", "", "committing offsets needs a group.id")
        })?;
        let (generation, member) = match self.subscription {
            Subscription::Topics(_) => {
                let st = group.state.lock();
                (st.generation, st.member_id.clone())
            }
            // A manually assigned consumer commits as a "simple" member.
            _ => (-1, String::new()),
        };
        Ok((group, generation, member))
    }

    fn spawn_commit(&self, offsets: HashMap<TopicPartition, i64>) -> CommitHandle {
        let cluster = self.cluster.clone();
        let settings = self.settings.clone();
        let epochs: HashMap<TopicPartition, Option<i32>> = offsets
            .keys()
            .map(|tp| (tp.clone(), self.assignment.get(tp).and_then(|s| s.epoch)))
            .collect();
        let context = self.commit_context();
        CommitHandle(tokio::spawn(async move {
            let (group, generation, member) = context?;
            commit_with_retries(
                &cluster, &settings, &group, generation, &member, &offsets, &epochs,
            )
            .await
        }))
    }

    /// Commits the positions of every assigned partition and waits for the result.
    pub async fn commit_sync(&mut self) -> Result<()> {
        self.ensure_open()?;
        let offsets = self.consumed_offsets(None);
        if offsets.is_empty() {
            return Ok(());
        }
        self.commit_offsets_sync(offsets).await
    }

    /// Commits the given offsets (the offset of the *next* record to read) and waits.
    pub async fn commit_offsets_sync(
        &mut self,
        offsets: HashMap<TopicPartition, i64>,
    ) -> Result<()> {
        self.ensure_open()?;
        let (group, generation, member) = self.commit_context()?;
        let epochs: HashMap<TopicPartition, Option<i32>> = offsets
            .keys()
            .map(|tp| (tp.clone(), self.assignment.get(tp).and_then(|s| s.epoch)))
            .collect();
        commit_with_retries(
            &self.cluster,
            &self.settings,
            &group,
            generation,
            &member,
            &offsets,
            &epochs,
        )
        .await
    }

    /// Commits the positions of every assigned partition in the background.
    pub fn commit_async(&mut self) -> CommitHandle {
        let offsets = self.consumed_offsets(None);
        self.spawn_commit(offsets)
    }

    /// Committed offsets of `partitions` for this consumer's group (`None`: no commit).
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        self.ensure_open()?;
        let deadline = Instant::now() + self.settings.default_api_timeout;
        if self.group.is_none() {
            return Err(ClientError::invalid_config(
                "group.id",
                "",
                "committed offsets need a group.id",
            ));
        }
        let found = fetch_committed_for(
            self.cluster.clone(),
            self.group.clone(),
            self.settings.clone(),
            partitions,
            deadline,
        )
        .await?;
        Ok(partitions
            .iter()
            .map(|tp| {
                (
                    tp.clone(),
                    found.get(tp).cloned().flatten().map(|c| c.offset),
                )
            })
            .collect())
    }

    /// Moves the position of an assigned partition; the next poll reads from `offset`.
    pub fn seek(&mut self, partition: &TopicPartition, offset: i64) -> Result<()> {
        if offset < 0 {
            return Err(ClientError::InvalidArgument(format!(
                "seek to negative offset {offset}"
            )));
        }
        let state = self.state_mut(partition)?;
        state.position = Some(offset);
        state.epoch = None;
        state.reset = None;
        self.buffered.retain(|f| &f.tp != partition);
        Ok(())
    }

    /// Moves the positions to the log start (resolved lazily, on the next poll or position).
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_reset(partitions, Reset::Earliest)
    }

    /// Moves the positions to the log end (resolved lazily).
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_reset(partitions, Reset::Latest)
    }

    fn seek_reset(&mut self, partitions: &[TopicPartition], reset: Reset) -> Result<()> {
        let targets: Vec<TopicPartition> = if partitions.is_empty() {
            self.assignment.keys().cloned().collect()
        } else {
            partitions.to_vec()
        };
        for tp in &targets {
            let state = self.state_mut(tp)?;
            state.reset = Some(reset);
            state.position = None;
        }
        self.buffered.retain(|f| !targets.contains(&f.tp));
        Ok(())
    }

    /// The offset of the next record `poll` will return for `partition`.
    pub async fn position(&mut self, partition: &TopicPartition) -> Result<i64> {
        self.ensure_open()?;
        let state = self
            .assignment
            .get(partition)
            .ok_or_else(|| ClientError::NotAssigned(partition.clone()))?;
        if let (Some(p), None) = (state.position, state.reset) {
            return Ok(p);
        }
        let deadline = Instant::now() + self.settings.default_api_timeout;
        loop {
            if let Some(e) = self.pending_error.take() {
                return Err(e);
            }
            match self.assignment.get(partition) {
                None => return Err(ClientError::NotAssigned(partition.clone())),
                Some(s) if s.reset.is_none() && s.position.is_some() => {
                    return Ok(s.position.unwrap_or_default())
                }
                Some(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!("no position for {partition}")));
            }
            self.start_position_lookups();
            // Lookups in flight answer with an event; after a failure, retry at `next_lookup`.
            let wake = if self.next_lookup > Instant::now() {
                self.next_lookup.min(deadline)
            } else {
                deadline
            };
            self.wait(wake).await?;
        }
    }

    /// The high watermark seen in the last fetch of `partition` (`None` before any fetch).
    pub fn high_watermark(&self, partition: &TopicPartition) -> Option<i64> {
        self.assignment
            .get(partition)
            .map(|s| s.high_watermark)
            .filter(|hw| *hw > 0)
    }

    /// Stops returning (and fetching) records of these partitions until resumed.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.state_mut(tp)?.paused = true;
        }
        Ok(())
    }

    /// Resumes paused partitions.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.state_mut(tp)?.paused = false;
        }
        Ok(())
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assignment
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    async fn revoke_all_for_leave(&mut self) {
        let owned: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        if owned.is_empty() {
            return;
        }
        let stable = self
            .group
            .as_ref()
            .is_some_and(|g| g.state.lock().state == MemberState::Stable);
        if self.settings.auto_commit && stable {
            if let Err(e) = self.commit_consumed(&owned).await {
                tracing::warn!(error = %e, "final auto-commit failed");
            }
        }
        if let Some(l) = self.listener.as_mut() {
            l.on_partitions_revoked(&owned);
        }
    }

    /// Commits (with auto-commit), revokes, leaves the group and closes connections.
    pub async fn close(mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut result = Ok(());
        match self.subscription {
            Subscription::Topics(_) => {
                if let Some(h) = self.join.take() {
                    h.abort();
                }
                self.revoke_all_for_leave().await;
                if let Some(g) = self.group.clone() {
                    result =
                        group::leave_group(&self.cluster, &g, "the consumer is being closed").await;
                }
            }
            Subscription::Manual if self.settings.auto_commit => {
                let offsets = self.consumed_offsets(None);
                if !offsets.is_empty() {
                    result = self.commit_offsets_sync(offsets).await;
                }
            }
            _ => {}
        }
        self.closed = true;
        result
    }
}

async fn commit_with_retries(
    cluster: &Cluster,
    settings: &ConsumerSettings,
    group: &Arc<Group>,
    generation: i32,
    member: &str,
    offsets: &HashMap<TopicPartition, i64>,
    epochs: &HashMap<TopicPartition, Option<i32>>,
) -> Result<()> {
    let entries: Vec<(TopicPartition, i64, Option<i32>, Option<String>)> = offsets
        .iter()
        .map(|(tp, o)| (tp.clone(), *o, epochs.get(tp).copied().flatten(), None))
        .collect();
    let deadline = Instant::now() + settings.default_api_timeout;
    cluster
        .retry(deadline, "OffsetCommit", || async {
            let coordinator = group.coordinator(cluster).await?;
            let results = group::commit_offsets(
                cluster,
                coordinator,
                &group.group_id,
                generation,
                member,
                group.instance_id.as_deref(),
                &entries,
            )
            .await;
            let results = match results {
                Ok(r) => r,
                Err(e) => {
                    if e.is_retriable() {
                        group.state.lock().coordinator = None;
                    }
                    return Err(e);
                }
            };
            for (_, r) in results {
                if let Err(e) = r {
                    if let Some(code) = e.code() {
                        group.on_error(code);
                    }
                    return Err(e);
                }
            }
            Ok(())
        })
        .await
}

/// OffsetFetch for the consumer's group, retried until the API deadline. A free function so
/// the future does not borrow the consumer.
async fn fetch_committed_for(
    cluster: Arc<Cluster>,
    group: Option<Arc<Group>>,
    settings: Arc<ConsumerSettings>,
    partitions: &[TopicPartition],
    deadline: Instant,
) -> Result<HashMap<TopicPartition, Option<group::Committed>>> {
    let Some(group) = group else {
        return Ok(HashMap::new());
    };
    let api_deadline = deadline.max(Instant::now() + settings.default_api_timeout);
    let require_stable = settings.isolation == IsolationLevel::ReadCommitted;
    cluster
        .retry(api_deadline, "OffsetFetch", || {
            let group = group.clone();
            let cluster = cluster.clone();
            async move {
                let coordinator = group.coordinator(&cluster).await?;
                let r = group::fetch_committed(
                    &cluster,
                    coordinator,
                    &group.group_id,
                    Some(partitions),
                    require_stable,
                )
                .await;
                if let Err(e) = &r {
                    if let Some(code) = e.code() {
                        group.on_error(code);
                    }
                }
                r
            }
        })
        .await
}

fn reset_timestamp(reset: Reset) -> i64 {
    match reset {
        Reset::Earliest => EARLIEST_TIMESTAMP,
        Reset::Latest => LATEST_TIMESTAMP,
    }
}
