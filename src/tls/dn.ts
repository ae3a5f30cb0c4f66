// A certificate's distinguished name as QEMU compares it with authz-simple's `identity`:
// GnuTLS's gnutls_x509_crt_get_dn, an RFC 4514 string, most specific RDN first, e.g.
// `CN=laptop.example.com,O=Example Org,L=London,ST=London,C=GB` (what
// `openssl x509 -noout -subject -nameopt RFC2253` prints).
//
// Node gives the subject as X509Certificate#subject: OpenSSL's multi-line form, one RDN per
// line in certificate order (C first), values escaped per RFC 2253, the members of a
// multi-valued RDN joined by " + ". Reversing the lines and joining them with "," gives the
// RFC 4514 string; " + " becomes "+" (a literal '+' in a value is escaped as "\+", so the
// separator cannot be confused with it).

import type { X509Certificate } from 'node:crypto';

export function subjectDn(cert: X509Certificate): string {
  return dnFromMultiline(cert.subject);
}

export function dnFromMultiline(subject: string): string {
  return subject
    .split('\n')
    .filter((line) => line !== '')
    .reverse()
    .map((rdn) => rdn.split(' + ').join('+'))
    .join(',');
}
