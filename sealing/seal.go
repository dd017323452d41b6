package sealing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// ErrUnopenable means a sealed value did not open: it was copied from another row or
// column, altered, or sealed under a key no longer in DATA_ENCRYPTION_KEYS.
var ErrUnopenable = errors.New("sealing: value does not open for this row (moved, altered, or its key is gone)")

// tinkPrefixLen is Tink's output prefix: a version byte 0x01 and the 4-byte key id.
const tinkPrefixLen = 5

// AAD is the associated data that binds a sealed value to one column of one row.
// Table and column are fixed identifiers; id is the row's primary key.
func AAD(table, column, id string) []byte {
	return []byte("scoville/v1\x00" + table + "\x00" + column + "\x00" + id)
}

// Seal encrypts plaintext under the primary key, bound to aad (see AAD).
func (k *Keyring) Seal(aad, plaintext []byte) ([]byte, error) {
	if len(aad) == 0 {
		return nil, errors.New("sealing: refusing to seal without associated data")
	}
	ct, err := k.aead.Encrypt(plaintext, aad)
	if err != nil {
		return nil, fmt.Errorf("sealing: seal: %w", err)
	}
	return ct, nil
}

// Open decrypts a value sealed with the same aad under any key of the ring. Failure
// is ErrUnopenable; the error never contains the value.
func (k *Keyring) Open(aad, sealed []byte) ([]byte, error) {
	pt, err := k.aead.Decrypt(sealed, aad)
	if err != nil {
		return nil, ErrUnopenable
	}
	return pt, nil
}

// KeyID returns the id of the key that sealed a value, read from Tink's prefix.
func KeyID(sealed []byte) (uint32, bool) {
	if len(sealed) < tinkPrefixLen || sealed[0] != 0x01 {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed[1:tinkPrefixLen]), true
}

// NormalizeEmail is the form an e-mail address is indexed under: trimmed and lower
// case, so that a lookup matches however the address was capitalised.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// EmailIndex is the keyed blind index of an e-mail address: HMAC-SHA256 of its
// normalised form under the blind index key. It finds exact matches only (no prefix
// or pattern search), and without the key it cannot be reversed by guessing
// addresses. An empty address has no index (nil).
func (k *Keyring) EmailIndex(email string) ([]byte, error) {
	n := NormalizeEmail(email)
	if n == "" {
		return nil, nil
	}
	out, err := k.index.ComputePrimaryPRF([]byte("customers.email\x00"+n), indexLen)
	if err != nil {
		return nil, fmt.Errorf("sealing: blind index: %w", err)
	}
	return out, nil
}
