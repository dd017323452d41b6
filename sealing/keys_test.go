package sealing_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/sealing"
)

func generate(t *testing.T) string {
	t.Helper()
	v, err := sealing.Generate()
	require.NoError(t, err)
	return v
}

func parse(t *testing.T, v string) *sealing.Keyring {
	t.Helper()
	k, err := sealing.Parse(v)
	require.NoError(t, err)
	return k
}

func TestSealOpen(t *testing.T) {
	k := parse(t, generate(t))
	aad := sealing.AAD("customers", "email", "11111111-1111-1111-1111-111111111111")
	ct, err := k.Seal(aad, []byte("ana@example.com"))
	require.NoError(t, err)
	require.False(t, bytes.Contains(ct, []byte("ana@example.com")))
	id, ok := sealing.KeyID(ct)
	require.True(t, ok, "Tink's prefix carries the key id")
	require.Equal(t, k.PrimaryKeyID(), id)

	pt, err := k.Open(aad, ct)
	require.NoError(t, err)
	require.Equal(t, "ana@example.com", string(pt))

	t.Run("another row does not open it", func(t *testing.T) {
		_, err := k.Open(sealing.AAD("customers", "email", "22222222-2222-2222-2222-222222222222"), ct)
		require.ErrorIs(t, err, sealing.ErrUnopenable)
	})
	t.Run("another column of the same row does not open it", func(t *testing.T) {
		_, err := k.Open(sealing.AAD("customers", "name", "11111111-1111-1111-1111-111111111111"), ct)
		require.ErrorIs(t, err, sealing.ErrUnopenable)
	})
	t.Run("an altered value does not open", func(t *testing.T) {
		bad := bytes.Clone(ct)
		bad[len(bad)-1] ^= 1
		_, err := k.Open(aad, bad)
		require.ErrorIs(t, err, sealing.ErrUnopenable)
	})
	t.Run("other keys do not open it", func(t *testing.T) {
		_, err := parse(t, generate(t)).Open(aad, ct)
		require.ErrorIs(t, err, sealing.ErrUnopenable)
	})
	t.Run("garbage and empty input fail without panicking", func(t *testing.T) {
		for _, in := range [][]byte{nil, {}, {1}, {1, 2, 3, 4, 5}, []byte("plain text")} {
			_, err := k.Open(aad, in)
			require.ErrorIs(t, err, sealing.ErrUnopenable)
		}
	})
	t.Run("no associated data is refused", func(t *testing.T) {
		_, err := k.Seal(nil, []byte("x"))
		require.Error(t, err)
	})
	t.Run("sealing twice gives different bytes", func(t *testing.T) {
		ct2, err := k.Seal(aad, []byte("ana@example.com"))
		require.NoError(t, err)
		require.NotEqual(t, ct, ct2)
	})
}

func TestRotate(t *testing.T) {
	v1 := generate(t)
	k1 := parse(t, v1)
	aad := sealing.AAD("shipments", "address", "33333333-3333-3333-3333-333333333333")
	old, err := k1.Seal(aad, []byte(`{"line1":"1 Pepper St"}`))
	require.NoError(t, err)

	v2, err := sealing.Rotate(v1)
	require.NoError(t, err)
	k2 := parse(t, v2)
	require.NotEqual(t, k1.PrimaryKeyID(), k2.PrimaryKeyID(), "a new primary")
	require.ElementsMatch(t, append(k1.KeyIDs(), k2.PrimaryKeyID()), k2.KeyIDs(), "the old key is kept")

	pt, err := k2.Open(aad, old)
	require.NoError(t, err, "data sealed before the rotation still opens")
	require.Equal(t, `{"line1":"1 Pepper St"}`, string(pt))

	fresh, err := k2.Seal(aad, pt)
	require.NoError(t, err)
	id, _ := sealing.KeyID(fresh)
	require.Equal(t, k2.PrimaryKeyID(), id, "new writes use the new primary")
	_, err = k1.Open(aad, fresh)
	require.ErrorIs(t, err, sealing.ErrUnopenable, "the old key set cannot read data sealed after rotation")

	i1, err := k1.EmailIndex("ana@example.com")
	require.NoError(t, err)
	i2, err := k2.EmailIndex("ana@example.com")
	require.NoError(t, err)
	require.Equal(t, i1, i2, "the blind index key is not rotated with the AEAD keys")

	_, err = sealing.Rotate("not keys")
	require.ErrorIs(t, err, sealing.ErrMalformedKeys)
	_, err = sealing.Rotate(sealing.DevelopmentKeys)
	require.Error(t, err, "the public development set is never turned into a real one")
}

func TestEmailIndex(t *testing.T) {
	k := parse(t, generate(t))
	idx := func(s string) []byte {
		out, err := k.EmailIndex(s)
		require.NoError(t, err)
		return out
	}
	a := idx("Ana.Example@Example.com")
	require.Len(t, a, 32)
	require.Equal(t, a, idx("ana.example@example.com"), "case-insensitive")
	require.Equal(t, a, idx("  ana.example@example.com "), "surrounding space ignored")
	require.NotEqual(t, a, idx("ana.example@example.co"), "a prefix is another address")
	require.NotEqual(t, a, idx("ana"))
	require.Nil(t, idx(""), "no address, no index")
	other, err := parse(t, generate(t)).EmailIndex("ana.example@example.com")
	require.NoError(t, err)
	require.NotEqual(t, a, other, "the index is keyed: other keys give other values")
}

func TestParseRefusesMalformedValues(t *testing.T) {
	good := generate(t)
	raw, err := base64.StdEncoding.DecodeString(good)
	require.NoError(t, err)
	var env map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &env))
	with := func(change func(map[string]json.RawMessage)) string {
		m := map[string]json.RawMessage{}
		for k, v := range env {
			m[k] = v
		}
		change(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return base64.StdEncoding.EncodeToString(b)
	}
	// A MAC-like keyset where the AEAD belongs: the blind index keyset in both places.
	swapped := with(func(m map[string]json.RawMessage) { m["aead"] = env["blindIndex"] })
	cases := map[string]string{
		"empty":              "",
		"not base64":         "%%%not-base64%%%",
		"base64 of not JSON": base64.StdEncoding.EncodeToString([]byte("hello")),
		"raw Tink keyset":    base64.StdEncoding.EncodeToString(env["aead"]),
		"wrong format":       with(func(m map[string]json.RawMessage) { m["format"] = json.RawMessage(`"v0"`) }),
		"no aead keyset":     with(func(m map[string]json.RawMessage) { delete(m, "aead") }),
		"no index keyset":    with(func(m map[string]json.RawMessage) { delete(m, "blindIndex") }),
		"aead keyset broken": with(func(m map[string]json.RawMessage) { m["aead"] = json.RawMessage(`{"key":[]}`) }),
		"wrong key type":     swapped,
		"unknown field":      with(func(m map[string]json.RawMessage) { m["extra"] = json.RawMessage(`1`) }),
		"truncated":          good[:len(good)/2],
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := sealing.Parse(v)
			require.ErrorIs(t, err, sealing.ErrMalformedKeys)
			if len(v) > 8 {
				require.NotContains(t, err.Error(), v[:8], "the message never quotes the value")
			}
		})
	}
}

func TestDevelopmentKeys(t *testing.T) {
	k := parse(t, sealing.DevelopmentKeys)
	require.True(t, k.Development())
	require.False(t, parse(t, generate(t)).Development())
}

func TestGenerateIsFresh(t *testing.T) {
	a, b := generate(t), generate(t)
	require.NotEqual(t, a, b)
	require.False(t, strings.ContainsAny(a, " \n"), "one line, safe to paste into an environment")
}
