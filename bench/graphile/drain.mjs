// graphile-worker's side of bench/queue_peers.py: one run, driven through graphile-worker's own
// API, figures printed as one JSON line on stdout.
//
//   scripts/graphile-worker.sh node bench/graphile/drain.mjs '<json config>'
//
// config: {dsn, mode: "migrate" | "run" | "latency", jobs, samples, chunk, pools, concurrency,
//          localQueueSize, completeJobBatchDelay, maxPoolSize}
//
// run:      enqueue `jobs` no-op jobs with graphile_worker.add_jobs (one call per `chunk`, as
//           graphile-worker's own perfTest/init.js does), then `pools` runOnce() worker pools
//           in this process, each with `concurrency` jobs at a time and the given batching
//           settings, until no job is left. Node start-up and the schema migration are outside
//           the timed part, as chirpbase's migrations are.
// latency:  enqueue `jobs` jobs (the backlog), then one runner, one job at a time, no local
//           queue and no completion batching, stopped after `samples` jobs: every job costs one
//           get_job round trip, which is timed.
// migrate:  install or update graphile-worker's schema and exit.
//
// Claim round trips are timed at the client: every query graphile-worker issues under its
// prepared-statement name `get_job*` (src/sql/getJobs.ts) is wrapped, from the call to the
// resolved rows, as bench/queue_peers.py times chirpbase's claim_jobs and pgmq's read.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const home = process.env.GRAPHILE_WORKER_HOME;
if (!home) {
  console.error("GRAPHILE_WORKER_HOME is not set: run through scripts/graphile-worker.sh node");
  process.exit(2);
}
const require = createRequire(path.join(home, "package.json"));
const pg = require("pg");
const worker = await import(
  pathToFileURL(path.join(home, "node_modules/graphile-worker/dist/index.js")).href
);

const config = JSON.parse(process.argv[2] ?? "{}");
const {
  dsn,
  mode = "run",
  jobs = 1000,
  samples = 100,
  chunk = 1000,
  pools = 1,
  concurrency = 24,
  localQueueSize = 500,
  completeJobBatchDelay = 0,
  maxPoolSize = 25,
} = config;
const schema = "graphile_worker";

const claimMs = [];
const claimRows = [];

function instrument(client) {
  const query = client.query;
  client.query = function timedQuery(cfg, values, callback) {
    const name = cfg && typeof cfg === "object" ? cfg.name : undefined;
    if (typeof name !== "string" || !name.startsWith("get_job")) {
      return query.call(this, cfg, values, callback);
    }
    const started = process.hrtime.bigint();
    const result = query.call(this, cfg, values, callback);
    if (result && typeof result.then === "function") {
      result.then(
        (res) => {
          claimMs.push(Number(process.hrtime.bigint() - started) / 1e6);
          claimRows.push(res?.rowCount ?? 0);
        },
        () => {},
      );
    }
    return result;
  };
}

const pgPool = new pg.Pool({ connectionString: dsn, max: maxPoolSize });
pgPool.on("connect", instrument);
pgPool.on("error", (e) => console.error(`pool error: ${e.message}`));

const quiet = new worker.Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[${level}] ${message}`);
});

let executed = 0;
let onExecuted = () => {};
const taskList = {
  noop: async () => {
    executed += 1;
    onExecuted();
  },
};

function preset(options) {
  return {
    worker: {
      schema,
      concurrentJobs: options.concurrency,
      maxPoolSize,
      localQueue: { size: options.localQueueSize },
      completeJobBatchDelay: options.completeJobBatchDelay,
      failJobBatchDelay: options.completeJobBatchDelay,
      // Cron and task directories are not used; keep the runner from reading the disk.
      crontabFile: path.join(home, "crontab.absent"),
      taskDirectory: path.join(home, "tasks.absent"),
    },
  };
}

async function enqueue(total) {
  const started = process.hrtime.bigint();
  for (let done = 0; done < total; done += chunk) {
    const specs = [];
    for (let i = done; i < Math.min(total, done + chunk); i++) {
      specs.push({ identifier: "noop", payload: { n: i } });
    }
    await pgPool.query(
      `select 1 from ${schema}.add_jobs(array(select json_populate_recordset(null::${schema}.job_spec, $1::json)))`,
      [JSON.stringify(specs)],
    );
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function drain(poolCount, options) {
  const started = process.hrtime.bigint();
  const runs = [];
  for (let i = 0; i < poolCount; i++) {
    runs.push(worker.runOnce({ pgPool, logger: quiet, taskList, preset: preset(options) }));
  }
  await Promise.all(runs);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function remaining() {
  const { rows } = await pgPool.query(`select count(*)::int as n from ${schema}._private_jobs`);
  return rows[0].n;
}

async function main() {
  await worker.runMigrations({ pgPool, logger: quiet });
  if (mode === "migrate") {
    return { mode };
  }
  if (mode === "run") {
    const enqueueS = await enqueue(jobs);
    const processS = await drain(pools, { concurrency, localQueueSize, completeJobBatchDelay });
    return {
      mode,
      jobs,
      executed,
      remaining: await remaining(),
      enqueue_s: enqueueS,
      process_s: processS,
      claim_ms: claimMs,
      claim_rows: claimRows,
    };
  }
  if (mode === "latency") {
    await enqueue(jobs);
    const options = { concurrency: 1, localQueueSize: -1, completeJobBatchDelay: -1 };
    const runner = await worker.run({ pgPool, logger: quiet, taskList, preset: preset(options) });
    await new Promise((resolve) => {
      onExecuted = () => executed >= samples && resolve();
    });
    await runner.stop();
    await runner.promise;
    // Only the claims of the jobs that ran (stop() may race one more get_job).
    return { mode, jobs, executed, remaining: await remaining(), claim_ms: claimMs.slice(0, samples) };
  }
  throw new Error(`unknown mode ${mode}`);
}

try {
  const out = await main();
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await pgPool.end();
}
