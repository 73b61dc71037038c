/**
 * The Cedar view of a Vault API path (`Rampart::VaultPath::"secret/data/app"`), which is where
 * `sys/policy` ACL rules are evaluated (src/secrets/acl/cedar.ts). Cedar's `like` has only `*`,
 * which crosses `/`; Vault's `+` matches exactly one segment. So the entity also carries its
 * segments (`seg0`…`seg31`) and the path after the first i segments (`tail1`…`tail32`, present
 * only while at least one segment remains), and a rule with `+` compares segments up to its last
 * `+` and the tail after it. Every attribute is a function of the entity id, so a cached
 * decision keyed by the id stays exact.
 */
export const VAULT_PATH_TYPE = 'Rampart::VaultPath';
export const VAULT_PATH_SEGMENTS = 32;

export function vaultPathAttributes(path: string): Record<string, string> {
  const segments = path.split('/');
  const attrs: Record<string, string> = { path };
  for (let i = 0; i < Math.min(segments.length, VAULT_PATH_SEGMENTS); i++) attrs[`seg${i}`] = segments[i]!;
  for (let i = 1; i <= VAULT_PATH_SEGMENTS && i < segments.length; i++) attrs[`tail${i}`] = segments.slice(i).join('/');
  return attrs;
}

/** The entity shape for the Cedar schema (src/authz/rampart-schema.ts). */
export function vaultPathShape(): string {
  const optional = [
    ...Array.from({ length: VAULT_PATH_SEGMENTS }, (_, i) => `seg${i}?: String`),
    ...Array.from({ length: VAULT_PATH_SEGMENTS }, (_, i) => `tail${i + 1}?: String`),
  ];
  return `{ tenant: String, path: String, ${optional.join(', ')} }`;
}
