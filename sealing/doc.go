// Package sealing owns the encryption of personal data at rest (DAT-1): the keys
// (DATA_ENCRYPTION_KEYS), the authenticated encryption of each sealed column bound to
// its row, the keyed blind index that finds a customer by e-mail without storing it in
// the clear, and the re-encryption of every sealed column after a key rotation.
//
// The keys are two Tink keysets carried in one value:
//
//   - "aead": AES-256-GCM keys with Tink's output prefix, so every ciphertext starts
//     with the id of the key that sealed it. The primary key seals; every key in the
//     set opens. Rotation adds a new primary and keeps the old keys for reading.
//   - "blindIndex": one HMAC-SHA256 PRF key for the e-mail blind index. It is not
//     rotated with the AEAD keys, since every stored index would change with it.
//
// DATA_ENCRYPTION_KEYS is the standard base64 encoding of the JSON object
// {"format":"scoville-data-keys/v1","aead":<keyset>,"blindIndex":<keyset>}, where each
// keyset is in Tink's JSON keyset format. `scoville keys generate` prints a fresh
// value and `scoville keys rotate` a rotated one.
//
// Each value is sealed with associated data naming its table, column and row id, so a
// ciphertext copied into another row or column does not open.
package sealing
