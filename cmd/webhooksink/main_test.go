package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/outbox"
)

// The Standard Webhooks specification's published example.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = "1614265330"
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestVerifyFollowsTheSpecVector(t *testing.T) {
	s, err := newSink(vectorSecret)
	require.NoError(t, err)
	require.True(t, s.verify(vectorID, vectorTS, []byte(vectorBody), vectorSig))
	require.True(t, s.verify(vectorID, vectorTS, []byte(vectorBody), "v1,bm90IGl0 "+vectorSig), "any entry may match")

	for name, c := range map[string][4]string{
		"body changed":      {vectorID, vectorTS, `{"test": 2432232315}`, vectorSig},
		"id changed":        {"msg_p5jXN8AQM9LWM0D4loKWxJel", vectorTS, vectorBody, vectorSig},
		"timestamp changed": {vectorID, "1614265331", vectorBody, vectorSig},
		"other version":     {vectorID, vectorTS, vectorBody, "v2," + strings.TrimPrefix(vectorSig, "v1,")},
		"no signature":      {vectorID, vectorTS, vectorBody, ""},
		"no id":             {"", vectorTS, vectorBody, vectorSig},
	} {
		require.False(t, s.verify(c[0], c[1], []byte(c[2]), c[3]), name)
	}
}

func TestSinkCountsDistinctVerifiedIDsByType(t *testing.T) {
	s, err := newSink(vectorSecret)
	require.NoError(t, err)
	post := func(id, ts, body, sig string) int {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", sig)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code
	}
	// Signed by the server's own signer: what the sink must accept.
	sign := func(id, body string) string {
		sig, err := outbox.Sign(vectorSecret, id, 1614265330, []byte(body))
		require.NoError(t, err)
		return sig
	}
	shipment := `{"type":"shipment.created","data":{}}`
	require.Equal(t, http.StatusNoContent, post("msg_1", vectorTS, shipment, sign("msg_1", shipment)))
	require.Equal(t, http.StatusNoContent, post("msg_1", vectorTS, shipment, sign("msg_1", shipment)), "a repeat is answered")
	require.Equal(t, http.StatusUnauthorized, post("msg_2", vectorTS, shipment, sign("msg_1", shipment)), "a signature of another id")
	payment := `{"type":"payment.succeeded","data":{}}`
	require.Equal(t, http.StatusNoContent, post("msg_3", vectorTS, payment, sign("msg_3", payment)))
	require.Equal(t, http.StatusBadRequest, post("msg_4", vectorTS, `[]`, sign("msg_4", `[]`)))

	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats", nil))
	var st stats
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st))
	require.Equal(t, int64(5), st.Requests)
	require.Equal(t, int64(3), st.Verified)
	require.Equal(t, int64(1), st.BadSignature)
	require.Equal(t, int64(1), st.Malformed)
	require.Equal(t, int64(2), st.Distinct)
	require.Equal(t, int64(1), st.Repeats)
	require.Equal(t, map[string]int64{"shipment.created": 1, "payment.succeeded": 1}, st.ByType)
}

func TestSinkRefusesASecretThatIsNotOne(t *testing.T) {
	for _, secret := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"} {
		_, err := newSink(secret)
		require.Error(t, err, secret)
	}
}
