// KafkaJS 2.2.4: admin, producer (plain and gzip), and with --consume a group consumer.
//
// 1. admin.createTopics (3 partitions each) for a plain and a gzip topic; listTopics,
//    fetchTopicMetadata and describeCluster must show them.
// 2. producer.send (acks=-1) of --records keyed records to each, in batches of 100; every
//    partition response must have errorCode 0; fetchTopicOffsets must add up to --records.
// 3. With --consume (needs consumer groups: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//    OffsetCommit/OffsetFetch, LeaveGroup): a consumer in a new group subscribes to both topics
//    fromBeginning and must get every record exactly once, in order per partition and key; after
//    disconnect, admin.fetchOffsets must show the group's committed offsets at the end offsets.
//    KafkaJS has no consumer without a group, which is why this part is optional.
// 4. admin.deleteTopics removes both topics.
//
//   node kafkajs_roundtrip.js --bootstrap 127.0.0.1:9092 [--consume]
//
// kafkajs is loaded from FJORD_INTEROP_NODE_MODULES (or NODE_PATH), set by the Rust harness.

'use strict';

const path = require('path');

const started = Date.now();
function log(message) {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(2).padStart(7)}s] ${message}\n`);
}
function fail(message) {
  process.stderr.write(`FAIL: ${message}\n`);
  process.stdout.write(`FAIL: ${message}\n`);
  process.exit(1);
}
function check(condition, message) {
  if (!condition) fail(message);
}

function loadKafkaJs() {
  const dir = process.env.FJORD_INTEROP_NODE_MODULES;
  const name = dir ? path.join(dir, 'kafkajs') : 'kafkajs';
  try {
    return { kafkajs: require(name), version: require(`${name}/package.json`).version };
  } catch (e) {
    return fail(`cannot load kafkajs (${e.message}): run \`cargo xtask install\``);
  }
}

function parseArgs(argv) {
  const args = { bootstrap: null, consume: false, records: 1000, keys: 50 };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--bootstrap': args.bootstrap = argv[++i]; break;
      case '--consume': args.consume = true; break;
      case '--records': args.records = Number(argv[++i]); break;
      case '--keys': args.keys = Number(argv[++i]); break;
      default: fail(`unknown argument ${argv[i]}`);
    }
  }
  check(args.bootstrap, 'usage: node kafkajs_roundtrip.js --bootstrap HOST:PORT [--consume]');
  return args;
}

// The same deterministic records as common.py.
function keyOf(i, keys) {
  return `key-${String(i % keys).padStart(5, '0')}`;
}
function valueOf(i, keys) {
  const h = (BigInt(i) * 2654435761n) & 0xffffffffn;
  const filler = h.toString(16).padStart(8, '0').repeat(8);
  return `${i}|${keyOf(i, keys)}|${Math.floor(i / keys)}|${filler}`;
}
function unique(prefix) {
  return `${prefix}-${Math.random().toString(16).slice(2, 12)}`;
}

class Verifier {
  constructor(keys, records) {
    this.keys = keys;
    this.records = records;
    this.seen = new Map(); // `${topic}:${i}` -> count
    this.lastOffset = new Map(); // `${topic}/${partition}` -> offset
    this.lastSeq = new Map(); // `${topic}:${key}` -> seq
    this.keyPartition = new Map(); // `${topic}:${key}` -> partition
    this.count = 0;
  }

  add(topic, partition, offset, key, value) {
    const where = `${topic}/${partition}@${offset}`;
    const parts = value.split('|');
    const i = Number(parts[0]);
    check(Number.isInteger(i) && i >= 0 && i < this.records, `${where}: value ${value.slice(0, 80)} is not one of ours`);
    check(value === valueOf(i, this.keys), `${where}: record ${i} corrupted: ${value.slice(0, 120)}`);
    check(key === keyOf(i, this.keys), `${where}: record ${i} has key ${key}, expected ${keyOf(i, this.keys)}`);
    const tp = `${topic}/${partition}`;
    const last = this.lastOffset.has(tp) ? this.lastOffset.get(tp) : -1n;
    check(offset > last, `${tp}: offset ${offset} after ${last}`);
    this.lastOffset.set(tp, offset);
    const tk = `${topic}:${key}`;
    if (!this.keyPartition.has(tk)) this.keyPartition.set(tk, partition);
    check(this.keyPartition.get(tk) === partition, `${tk} found in partitions ${this.keyPartition.get(tk)} and ${partition}`);
    const seq = Number(parts[2]);
    const prev = this.lastSeq.has(tk) ? this.lastSeq.get(tk) : -1;
    check(seq > prev, `${tk}: sequence ${seq} at ${where} after ${prev}`);
    this.lastSeq.set(tk, seq);
    const id = `${topic}:${i}`;
    check(!this.seen.has(id), `${topic}: record ${i} consumed twice (again at ${where})`);
    this.seen.set(id, 1);
    this.count++;
  }
}

async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000}s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { kafkajs, version } = loadKafkaJs();
  const { Kafka, CompressionTypes, logLevel, Partitioners } = kafkajs;
  log(`kafkajs ${version}`);

  const kafka = new Kafka({
    clientId: 'fjord-interop',
    brokers: [args.bootstrap],
    logLevel: logLevel.WARN,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 5 },
  });
  const topics = [
    { topic: unique('kjs-plain'), compression: CompressionTypes.None, name: 'none' },
    { topic: unique('kjs-gzip'), compression: CompressionTypes.GZIP, name: 'gzip' },
  ];

  // 1. admin
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: topics.map((t) => ({ topic: t.topic, numPartitions: 3, replicationFactor: 1 })),
    waitForLeaders: true,
    timeout: 30000,
  });
  check(created === true, `admin.createTopics returned ${created}`);
  const listed = await admin.listTopics();
  for (const t of topics) check(listed.includes(t.topic), `admin.listTopics() lacks ${t.topic}: ${listed}`);
  const md = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
  for (const t of md.topics) {
    check(t.partitions.length === 3, `fetchTopicMetadata: ${t.name} has ${t.partitions.length} partitions`);
    for (const p of t.partitions) {
      check(p.partitionErrorCode === 0, `fetchTopicMetadata: ${t.name}/${p.partitionId} error ${p.partitionErrorCode}`);
    }
  }
  const cluster = await admin.describeCluster();
  check(cluster.brokers.length === 1, `describeCluster: ${JSON.stringify(cluster)}`);
  log(`created ${topics.map((t) => t.topic).join(', ')}; cluster ${cluster.clusterId}, broker ` +
      `${cluster.brokers[0].nodeId} at ${cluster.brokers[0].host}:${cluster.brokers[0].port}`);

  // 2. producer
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  for (const t of topics) {
    for (let start = 0; start < args.records; start += 100) {
      const messages = [];
      for (let i = start; i < Math.min(start + 100, args.records); i++) {
        messages.push({ key: keyOf(i, args.keys), value: valueOf(i, args.keys) });
      }
      const result = await producer.send({ topic: t.topic, acks: -1, compression: t.compression, messages });
      for (const r of result) {
        check(r.errorCode === 0, `producer.send to ${t.topic}: partition ${r.partition} errorCode ${r.errorCode}`);
      }
    }
    const offsets = await admin.fetchTopicOffsets(t.topic);
    const total = offsets.reduce((sum, o) => sum + (Number(o.high) - Number(o.low)), 0);
    check(total === args.records, `fetchTopicOffsets(${t.topic}) adds up to ${total}, expected ${args.records}: ` +
      JSON.stringify(offsets));
    log(`produced ${args.records} records to ${t.topic} (compression ${t.name}); fetchTopicOffsets agrees`);
  }
  await producer.disconnect();

  // 3. group consumer
  if (args.consume) {
    const groupId = unique('kjs-group');
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });
    await consumer.connect();
    await consumer.subscribe({ topics: topics.map((t) => t.topic), fromBeginning: true });
    const verifier = new Verifier(args.keys, args.records);
    const expected = args.records * topics.length;
    let resolveDone;
    const done = new Promise((resolve) => { resolveDone = resolve; });
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        for (const m of batch.messages) {
          verifier.add(batch.topic, batch.partition, BigInt(m.offset), m.key.toString(), m.value.toString());
          resolveOffset(m.offset);
        }
        await heartbeat();
        if (verifier.count >= expected) resolveDone();
      },
    });
    try {
      await withTimeout(done, 120000, `consuming ${expected} records`);
    } catch (e) {
      fail(`${e.message}: got ${verifier.count}`);
    }
    // KafkaJS commits the resolved offsets after each batch; disconnect also leaves the group.
    await consumer.disconnect();
    check(verifier.count === expected, `consumed ${verifier.count} records, expected ${expected}`);
    for (const t of topics) {
      const ends = await admin.fetchTopicOffsets(t.topic);
      const committed = await admin.fetchOffsets({ groupId, topics: [t.topic] });
      const byPartition = new Map(committed[0].partitions.map((p) => [p.partition, p.offset]));
      for (const e of ends) {
        check(byPartition.get(e.partition) === e.high,
          `group ${groupId}: committed offset of ${t.topic}/${e.partition} is ${byPartition.get(e.partition)}, end offset ${e.high}`);
      }
    }
    log(`group consumer ${groupId} read all ${expected} records once, in order; committed offsets are at the end`);
  } else {
    log('consumer part skipped (run with --consume once consumer groups are served)');
  }

  // 4. delete
  await admin.deleteTopics({ topics: topics.map((t) => t.topic), timeout: 30000 });
  const after = await admin.listTopics();
  for (const t of topics) check(!after.includes(t.topic), `${t.topic} still listed after deleteTopics`);
  await admin.disconnect();
  process.stdout.write(`OK: kafkajs ${version}: admin, producer (none, gzip)` +
    `${args.consume ? ', group consumer' : ''} with ${args.records} records per topic\n`);
}

const watchdog = setTimeout(() => fail('kafkajs_roundtrip.js did not finish within 240s'), 240000);
main().then(() => {
  clearTimeout(watchdog);
  process.exit(0);
}, (e) => fail(`${e && e.stack ? e.stack : e}`));
