// The values of the well-known PROXY protocol v2 TLVs, from the [type, offset, length] triples the
// native parser found (it checked every bound; these only read inside them). A value that does not
// have its type's shape stays in the raw list only. Every value is copied out of the header.
import type { ProxyProtocolInfo, ProxySsl, ProxyTlv } from '../core/types';

// The spec's names (haproxy doc/proxy-protocol.txt, 2.2) and the clouds' documented types.
export const PP2_TYPE = Object.freeze({
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
  /** Google Cloud Private Service Connect: the connection id, u64 big-endian. */
  GCP: 0xe0,
  /** Alibaba Cloud PrivateLink (NLB): subtype 0x01 VPC id, 0x02 endpoint id, 0x03 endpoint service id. */
  ALIBABA: 0xe1,
  /** AWS: subtype 0x01, the VPC endpoint id. */
  AWS: 0xea,
  /** Azure: subtype 0x01, the Private Endpoint LINKID, u32 little-endian. */
  AZURE: 0xee,
});

export const PP2_SUBTYPE_SSL = Object.freeze({ VERSION: 0x21, CN: 0x22, CIPHER: 0x23, SIG_ALG: 0x24, KEY_ALG: 0x25 });

// PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS: the client presented a certificate.
const CLIENT_CERT = 0x02 | 0x04;
const UNIQUE_ID_MAX = 128;

function copy(bytes: Buffer, offset: number, length: number): Buffer {
  return Buffer.from(bytes.subarray(offset, offset + length));
}

function list(bytes: Buffer, triples: readonly number[]): ProxyTlv[] {
  const out: ProxyTlv[] = [];
  for (let i = 0; i + 2 < triples.length; i += 3) {
    out.push({ type: triples[i], value: copy(bytes, triples[i + 1], triples[i + 2]) });
  }
  return out;
}

function ssl(bytes: Buffer, fields: { client: number; verify: number; tlvs: number[] }): ProxySsl {
  const out: ProxySsl = {
    client: fields.client,
    verify: fields.verify,
    verified: (fields.client & CLIENT_CERT) !== 0 && fields.verify === 0,
    tlvs: list(bytes, fields.tlvs),
  };
  for (const { type, value } of out.tlvs) {
    if (type === PP2_SUBTYPE_SSL.VERSION) out.version ??= value.toString('latin1');
    else if (type === PP2_SUBTYPE_SSL.CN) out.cn ??= value.toString('utf8');
    else if (type === PP2_SUBTYPE_SSL.CIPHER) out.cipher ??= value.toString('latin1');
    else if (type === PP2_SUBTYPE_SSL.SIG_ALG) out.sigAlg ??= value.toString('latin1');
    else if (type === PP2_SUBTYPE_SSL.KEY_ALG) out.keyAlg ??= value.toString('latin1');
  }
  return out;
}

function alibaba(info: ProxyProtocolInfo, value: Buffer): void {
  if (value.length < 2) return;
  const id = value.toString('latin1', 1);
  const a = (info.alibaba ??= {});
  if (value[0] === 0x01) a.vpcId ??= id;
  else if (value[0] === 0x02) a.endpointId ??= id;
  else if (value[0] === 0x03) a.endpointServiceId ??= id;
}

/**
 * Fills `info.tlvs` and the decoded fields from the header's bytes. The first TLV of a type wins
 * where a type appears twice (the spec says nothing; a proxy sends each once).
 */
export function decodeTlvs(
  info: ProxyProtocolInfo,
  bytes: Buffer,
  triples: readonly number[],
  sslFields: { client: number; verify: number; tlvs: number[] } | undefined,
): void {
  info.tlvs = list(bytes, triples);
  for (const { type, value } of info.tlvs) {
    switch (type) {
      case PP2_TYPE.ALPN:
        info.alpn ??= value.toString('latin1');
        break;
      case PP2_TYPE.AUTHORITY:
        info.authority ??= value.toString('utf8');
        break;
      case PP2_TYPE.UNIQUE_ID:
        if (value.length <= UNIQUE_ID_MAX) info.uniqueId ??= value;
        break;
      case PP2_TYPE.NETNS:
        info.netns ??= value.toString('latin1');
        break;
      case PP2_TYPE.AWS:
        if (value.length >= 2 && value[0] === 0x01) info.vpceId ??= value.toString('latin1', 1);
        break;
      case PP2_TYPE.AZURE:
        if (value.length === 5 && value[0] === 0x01) info.linkId ??= value.readUInt32LE(1);
        break;
      case PP2_TYPE.GCP:
        if (value.length === 8) info.pscConnectionId ??= value.readBigUInt64BE(0).toString();
        break;
      case PP2_TYPE.ALIBABA:
        alibaba(info, value);
        break;
    }
  }
  if (sslFields !== undefined) info.ssl = ssl(bytes, sslFields);
}
