package sealing

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Format names the layout of DATA_ENCRYPTION_KEYS, so a later layout can be told apart.
const Format = "scoville-data-keys/v1"

// purposeDevelopment marks the public development key set; production refuses it.
const purposeDevelopment = "development-only"

const (
	aesGCMTypeURL  = "type.googleapis.com/google.crypto.tink.AesGcmKey"
	hmacPRFTypeURL = "type.googleapis.com/google.crypto.tink.HmacPrfKey"
	// indexLen is the length of a blind index, in bytes (a full HMAC-SHA256).
	indexLen = 32
)

// ErrMalformedKeys means DATA_ENCRYPTION_KEYS cannot be used. Its messages describe
// what is wrong without quoting any of the value.
var ErrMalformedKeys = errors.New("sealing: malformed DATA_ENCRYPTION_KEYS")

// Keyring is the parsed DATA_ENCRYPTION_KEYS: the AEAD that seals and opens columns
// and the PRF of the blind index. It is safe for concurrent use.
type Keyring struct {
	aeadHandle  *keyset.Handle
	indexHandle *keyset.Handle
	aead        tink.AEAD
	index       *prf.Set
	primary     uint32
	keyIDs      []uint32
	development bool
}

// envelope is the JSON inside DATA_ENCRYPTION_KEYS.
type envelope struct {
	Format     string          `json:"format"`
	Purpose    string          `json:"purpose,omitempty"`
	AEAD       json.RawMessage `json:"aead"`
	BlindIndex json.RawMessage `json:"blindIndex"`
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedKeys}, args...)...)
}

// Parse reads a DATA_ENCRYPTION_KEYS value. Errors never contain key material.
func Parse(value string) (*Keyring, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, malformed("empty")
	}
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, malformed("not standard base64")
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, malformed("not the JSON object `scoville keys generate` prints")
	}
	if env.Format != Format {
		return nil, malformed("format is not %q", Format)
	}
	if env.Purpose != "" && env.Purpose != purposeDevelopment {
		return nil, malformed("unknown purpose")
	}
	aeadHandle, err := readKeyset(env.AEAD, "aead")
	if err != nil {
		return nil, err
	}
	indexHandle, err := readKeyset(env.BlindIndex, "blindIndex")
	if err != nil {
		return nil, err
	}
	k := &Keyring{aeadHandle: aeadHandle, indexHandle: indexHandle, development: env.Purpose == purposeDevelopment}
	info := aeadHandle.KeysetInfo()
	for _, ki := range info.GetKeyInfo() {
		if ki.GetTypeUrl() != aesGCMTypeURL || ki.GetOutputPrefixType() != tinkpb.OutputPrefixType_TINK {
			return nil, malformed("the aead keyset may hold only AES-GCM keys with Tink's output prefix")
		}
		if ki.GetStatus() == tinkpb.KeyStatusType_ENABLED {
			k.keyIDs = append(k.keyIDs, ki.GetKeyId())
		}
	}
	k.primary = info.GetPrimaryKeyId()
	if k.aead, err = aead.New(aeadHandle); err != nil {
		return nil, malformed("the aead keyset has no usable primary key")
	}
	iinfo := indexHandle.KeysetInfo()
	if len(iinfo.GetKeyInfo()) != 1 || iinfo.GetKeyInfo()[0].GetTypeUrl() != hmacPRFTypeURL {
		return nil, malformed("the blindIndex keyset must hold exactly one HMAC PRF key")
	}
	if k.index, err = prf.NewPRFSet(indexHandle); err != nil {
		return nil, malformed("the blindIndex keyset has no usable primary key")
	}
	if _, err := k.index.ComputePrimaryPRF([]byte("probe"), indexLen); err != nil {
		return nil, malformed("the blindIndex key cannot produce a %d-byte index", indexLen)
	}
	return k, nil
}

func readKeyset(raw json.RawMessage, name string) (*keyset.Handle, error) {
	if len(raw) == 0 {
		return nil, malformed("the %s keyset is missing", name)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, malformed("the %s keyset is not a valid Tink JSON keyset", name)
	}
	return h, nil
}

// Generate returns a fresh DATA_ENCRYPTION_KEYS value: one AES-256-GCM key and one
// blind index key.
func Generate() (string, error) {
	ah, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", fmt.Errorf("sealing: generate aead key: %w", err)
	}
	ih, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return "", fmt.Errorf("sealing: generate blind index key: %w", err)
	}
	return encode(ah, ih, "")
}

// Rotate returns value with a new AES-256-GCM key added as the primary. The old keys
// stay, enabled, so data sealed under them still opens until `scoville keys
// reencrypt` has moved it to the new key. The blind index key is kept as is.
func Rotate(value string) (string, error) {
	k, err := Parse(value)
	if err != nil {
		return "", err
	}
	if k.development {
		return "", errors.New("sealing: the development key set is public; generate a real one instead of rotating it")
	}
	m := keyset.NewManagerFromHandle(k.aeadHandle)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", fmt.Errorf("sealing: rotate: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return "", fmt.Errorf("sealing: rotate: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return "", fmt.Errorf("sealing: rotate: %w", err)
	}
	return encode(h, k.indexHandle, "")
}

func encode(aeadHandle, indexHandle *keyset.Handle, purpose string) (string, error) {
	var a, i bytes.Buffer
	if err := insecurecleartextkeyset.Write(aeadHandle, keyset.NewJSONWriter(&a)); err != nil {
		return "", fmt.Errorf("sealing: write aead keyset: %w", err)
	}
	if err := insecurecleartextkeyset.Write(indexHandle, keyset.NewJSONWriter(&i)); err != nil {
		return "", fmt.Errorf("sealing: write blind index keyset: %w", err)
	}
	raw, err := json.Marshal(envelope{Format: Format, Purpose: purpose, AEAD: a.Bytes(), BlindIndex: i.Bytes()})
	if err != nil {
		return "", fmt.Errorf("sealing: encode keys: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// PrimaryKeyID is the id of the key new data is sealed under.
func (k *Keyring) PrimaryKeyID() uint32 { return k.primary }

// KeyIDs are the ids of every enabled key, the primary among them.
func (k *Keyring) KeyIDs() []uint32 { return append([]uint32(nil), k.keyIDs...) }

// Development reports whether this is the public development key set, which
// production refuses.
func (k *Keyring) Development() bool { return k.development }
