// Independent signer for DOIN transfers, written only from docs/transactions.md, using the
// audited @noble BIP340 implementation. It never touches DOIN's Rust code.
//
// Input (argv[2]): JSON {chain_id, secret_key, nonce, max_fee_per_weight,
//   max_priority_fee_per_weight, to, amount, aux_rand?}; hex for byte strings, decimal strings
//   for numbers. aux_rand (32 bytes) makes the signature deterministic, for test vectors.
//   For a batch payment, `outputs: [{to, amount}, ...]` instead of `to` and `amount`.
// Output (stdout): JSON {tx, id, sighash, sender} in hex.
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';

function taggedHash(tag, msg) {
  const t = sha256(utf8ToBytes(tag));
  return sha256(concatBytes(t, t, msg));
}

function u64le(decimal) {
  const v = BigInt(decimal);
  if (v < 0n || v > 0xffffffffffffffffn) throw new Error(`out of u64 range: ${decimal}`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v, true);
  return out;
}

function u32le(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

function bytes32(hex) {
  const b = hexToBytes(hex);
  if (b.length !== 32) throw new Error('expected 32 bytes');
  return b;
}

const input = JSON.parse(process.argv[2]);
const secret = bytes32(input.secret_key);
const sender = schnorr.getPublicKey(secret); // 32-byte x-only key

// The payload: kind 0 (Transfer: to, amount) or kind 11 (BatchTransfer: a u64 count, then
// each output's to and amount).
const payload = input.outputs === undefined
  ? concatBytes(u32le(0), bytes32(input.to), u64le(input.amount))
  : concatBytes(
    u32le(11),
    u64le(input.outputs.length),
    ...input.outputs.map((o) => concatBytes(bytes32(o.to), u64le(o.amount))),
  );
const body = concatBytes(
  bytes32(input.chain_id),
  sender,
  u64le(input.nonce),
  u64le(input.max_fee_per_weight),
  u64le(input.max_priority_fee_per_weight),
  payload,
);
const sighash = taggedHash('doin/tx', body);
const signature = input.aux_rand === undefined
  ? schnorr.sign(sighash, secret)
  : schnorr.sign(sighash, secret, bytes32(input.aux_rand));
const tx = concatBytes(body, signature);
const id = taggedHash('doin/txid', tx);

process.stdout.write(JSON.stringify({
  body: bytesToHex(body),
  tx: bytesToHex(tx),
  id: bytesToHex(id),
  sighash: bytesToHex(sighash),
  sender: bytesToHex(sender),
}) + '\n');
