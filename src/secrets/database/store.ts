import type { DatabaseConfig } from './config.js';
import type { DynamicRole } from './role.js';
import type { StaticRole } from './static-role.js';

/**
 * The storage port of the database secrets engine. Every record belongs to one tenant's mount;
 * passwords inside the records are barrier ciphertexts, never plaintext.
 */
export interface DatabaseStore {
  /** Returns undefined when the mount has no connection of that name. */
  getConfig(tenant: string, mount: string, name: string): Promise<DatabaseConfig | undefined>;
  putConfig(config: DatabaseConfig): Promise<void>;
  /** Returns false when there was no such connection. */
  deleteConfig(tenant: string, mount: string, name: string): Promise<boolean>;
  listConfigs(tenant: string, mount: string): Promise<string[]>;

  getRole(tenant: string, mount: string, name: string): Promise<DynamicRole | undefined>;
  putRole(role: DynamicRole): Promise<void>;
  deleteRole(tenant: string, mount: string, name: string): Promise<boolean>;
  listRoles(tenant: string, mount: string): Promise<string[]>;

  getStaticRole(tenant: string, mount: string, name: string): Promise<StaticRole | undefined>;
  putStaticRole(role: StaticRole): Promise<void>;
  deleteStaticRole(tenant: string, mount: string, name: string): Promise<boolean>;
  listStaticRoles(tenant: string, mount: string): Promise<string[]>;
  /** Static roles of every tenant whose next rotation is at or before `now`, earliest first. */
  dueStaticRoles(now: string, limit: number): Promise<StaticRole[]>;
  /**
   * Connections of every tenant with a root rotation left pending (the process died between its
   * steps): few, since a rotation clears its own; for the startup sweep (static-rotation.ts).
   */
  pendingRootRotations(): Promise<DatabaseConfig[]>;
  /** Deletes every record of a mount (unmount). */
  purgeMount(tenant: string, mount: string): Promise<void>;
}
