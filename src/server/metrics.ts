import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The Prometheus metrics the control plane exports at `GET /metrics`. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'rampart_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'rampart_http_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly auditAppends = new Counter({
    name: 'rampart_audit_appends_total',
    help: 'Audit events appended, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly storeBatchSize = new Histogram({
    name: 'rampart_store_batch_size',
    help: 'Write transactions per group-commit batch (SQLite), by result of its COMMIT',
    labelNames: ['result'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });
  readonly auditSinkLag = new Gauge({
    name: 'rampart_audit_sink_lag_events',
    help: 'Integrated audit events a SIEM sink has not received yet',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly auditSinkFailures = new Counter({
    name: 'rampart_audit_sink_failures_total',
    help: 'Failed audit sink delivery attempts (each is retried)',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly secretAccessAnomalies = new Counter({
    name: 'rampart_secret_access_anomalies_total',
    help: 'Secret reads flagged outside their principal baseline, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly authzDecisions = new Counter({
    name: 'rampart_authz_decisions_total',
    help: 'Authorization decisions, by decision',
    labelNames: ['decision'] as const,
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'rampart_' });
  }
}
