// QEMU's user-creatable objects that migration TLS uses, made by QMP `object-add` and HMP
// `object_add` and removed by `object-del`/`object_del`: tls-creds-x509, tls-creds-psk and
// authz-simple. Properties, defaults and error texts are QEMU's.

import { genericError } from '../util/errors.js';
import type { ArgSchema, ArgType } from '../control/qmp-args.js';
import { DEFAULT_PSK_USERNAME, loadPsk, loadX509 } from './creds.js';
import type { PskSettings, TlsEndpoint, X509Settings } from './security.js';

export type TlsObject =
  | { type: 'tls-creds-x509'; id: string; endpoint: TlsEndpoint; dir: string; x509: X509Settings }
  | { type: 'tls-creds-psk'; id: string; endpoint: TlsEndpoint; dir: string; psk: PskSettings }
  | { type: 'authz-simple'; id: string; identity: string };

export type QomType = TlsObject['type'];

const ENDPOINT: ArgType = { enum: ['server', 'client'] };

/** Each qom-type's properties and their JSON types (all optional in the schema, as in QAPI). */
export const OBJECT_PROPERTIES: Readonly<Record<QomType, Readonly<Record<string, ArgType>>>> = {
  'tls-creds-x509': { dir: 'str', endpoint: ENDPOINT, 'verify-peer': 'bool' },
  // verify-peer belongs to every tls-creds in QEMU; with a pre-shared key both sides prove
  // knowledge of the key, so it changes nothing.
  'tls-creds-psk': { dir: 'str', endpoint: ENDPOINT, 'verify-peer': 'bool', username: 'str' },
  'authz-simple': { identity: 'str' },
};

export const QOM_TYPES = Object.keys(OBJECT_PROPERTIES) as QomType[];

/**
 * object-add's QMP arguments: qom-type, id, and every type's properties. The schema checks
 * JSON types; TlsObjects.add checks that each property belongs to the chosen qom-type.
 */
export const OBJECT_ADD_ARGS: ArgSchema = {
  'qom-type': { type: { enum: QOM_TYPES } },
  id: { type: 'str' },
  ...Object.fromEntries(
    Object.values(OBJECT_PROPERTIES).flatMap((props) =>
      Object.entries(props).map(([name, type]) => [name, { type, optional: true }]),
    ),
  ),
};

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
function wellFormedId(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(id);
}

function typeName(t: ArgType): string {
  if (t === 'bool') return 'boolean';
  return 'string';
}

export class TlsObjects {
  private readonly objects = new Map<string, TlsObject>();

  get(id: string): TlsObject | undefined {
    return this.objects.get(id);
  }

  ids(): string[] {
    return [...this.objects.keys()];
  }

  /** object-add: {qom-type, id, ...properties}. Loads credentials from `dir` now, as QEMU does. */
  add(options: Record<string, unknown>): TlsObject {
    const type = options['qom-type'];
    if (type === undefined) throw genericError("Parameter 'qom-type' is missing");
    if (typeof type !== 'string' || !(QOM_TYPES as string[]).includes(type)) {
      throw genericError(`Parameter 'qom-type' does not accept value '${String(type)}'`);
    }
    const id = options.id;
    if (id === undefined) throw genericError("Parameter 'id' is missing");
    if (typeof id !== 'string' || !wellFormedId(id)) {
      throw genericError("Parameter 'id' expects an identifier");
    }
    const props = OBJECT_PROPERTIES[type as QomType];
    for (const [name, value] of Object.entries(options)) {
      if (name === 'qom-type' || name === 'id') continue;
      if (!Object.hasOwn(props, name)) throw genericError(`Parameter '${name}' is unexpected`);
      const t = props[name];
      const ok =
        t === 'bool'
          ? typeof value === 'boolean'
          : typeof value === 'string' &&
            (typeof t === 'string' || !('enum' in t) || t.enum.includes(value));
      if (!ok) {
        if (typeof value === 'string' && typeof t === 'object' && 'enum' in t) {
          throw genericError(`Parameter '${name}' does not accept value '${value}'`);
        }
        throw genericError(`Invalid parameter type for '${name}', expected: ${typeName(t)}`);
      }
    }
    if (this.objects.has(id)) {
      throw genericError(`attempt to add duplicate property '${id}' to object (type 'container')`);
    }
    const obj = build(type as QomType, id, options);
    this.objects.set(id, obj);
    return obj;
  }

  /** object-del. `inUse`: the object serves a migration in progress. */
  delete(id: string, inUse = false): void {
    if (!this.objects.has(id)) throw genericError(`object '${id}' not found`);
    if (inUse) throw genericError(`object '${id}' is in use, can not be deleted`);
    this.objects.delete(id);
  }
}

function build(type: QomType, id: string, o: Record<string, unknown>): TlsObject {
  if (type === 'authz-simple') {
    if (typeof o.identity !== 'string') throw genericError("The 'identity' property must be set");
    return { type, id, identity: o.identity };
  }
  if (typeof o.dir !== 'string' || o.dir === '') throw genericError("Missing 'dir' property value");
  // QEMU's defaults: endpoint client, verify-peer on
  const endpoint = (o.endpoint as TlsEndpoint | undefined) ?? 'client';
  const verifyPeer = (o['verify-peer'] as boolean | undefined) ?? true;
  if (type === 'tls-creds-x509') {
    return { type, id, endpoint, dir: o.dir, x509: loadX509(o.dir, endpoint, verifyPeer) };
  }
  const username = (o.username as string | undefined) || DEFAULT_PSK_USERNAME;
  return { type, id, endpoint, dir: o.dir, psk: loadPsk(o.dir, endpoint, username) };
}

const BOOL_WORDS: Readonly<Record<string, boolean>> = {
  on: true,
  yes: true,
  true: true,
  y: true,
  off: false,
  no: false,
  false: false,
  n: false,
};

/**
 * HMP's `object_add` argument, QEMU's keyval syntax: `TYPE,id=ID,prop=value,...` (the first
 * item is the qom-type; `,,` is a literal comma). Values are typed by the type's properties.
 */
export function parseObjectKeyval(text: string): Record<string, unknown> {
  const items: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',') {
      if (text[i + 1] === ',') {
        cur += ',';
        i++;
        continue;
      }
      items.push(cur);
      cur = '';
      continue;
    }
    cur += text[i];
  }
  items.push(cur);
  const out: Record<string, unknown> = {};
  items.forEach((item, i) => {
    const eq = item.indexOf('=');
    if (eq < 0) {
      if (i === 0 && item !== '') {
        out['qom-type'] = item;
        return;
      }
      throw genericError(`Expected '=' after parameter '${item}'`);
    }
    const key = item.slice(0, eq);
    if (key === '') throw genericError(`Invalid parameter ''`);
    if (Object.hasOwn(out, key)) throw genericError(`Parameter '${key}' is set more than once`);
    out[key] = item.slice(eq + 1);
  });
  const type = out['qom-type'];
  const props =
    typeof type === 'string' && Object.hasOwn(OBJECT_PROPERTIES, type)
      ? OBJECT_PROPERTIES[type as QomType]
      : {};
  for (const [key, value] of Object.entries(out)) {
    if (props[key] !== 'bool') continue;
    const b = BOOL_WORDS[String(value)];
    if (b === undefined) throw genericError(`Parameter '${key}' expects 'on' or 'off'`);
    out[key] = b;
  }
  return out;
}
