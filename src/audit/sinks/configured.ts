import { readFileSync } from 'node:fs';
import type { AuditSinkConfig } from '../../core/config.js';
import type { AuditSink } from '../sink.js';
import { JsonlFileSink } from './jsonl-file.js';
import { SyslogSink } from './syslog.js';
import { WebhookSink } from './webhook.js';

/**
 * The sinks `audit_sinks` describes. CA files are read now, so a missing or unreadable one stops
 * the server at start-up instead of failing every delivery later.
 */
export function createConfiguredSinks(configs: readonly AuditSinkConfig[]): AuditSink[] {
  return configs.map((c): AuditSink => {
    switch (c.type) {
      case 'jsonl':
        return new JsonlFileSink({ name: c.name, path: c.path, maxBytes: c.maxBytes, keep: c.keep });
      case 'syslog':
        return new SyslogSink({ name: c.name, host: c.host, port: c.port, ca: readCa(c.name, c.caFile), facility: c.facility });
      case 'webhook':
        return new WebhookSink({ name: c.name, url: c.url, ca: readCa(c.name, c.caFile), secret: c.secret });
    }
  });
}

function readCa(sink: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`audit sink "${sink}": cannot read ca_file ${path}: ${(err as Error).message}`, { cause: err });
  }
}
