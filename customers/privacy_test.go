package customers

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

const stripeEvent = `{"id":"evt_1","type":"invoice.paid","data":{"object":{
	"id":"in_1","object":"invoice","customer":"cus_erin","amount_paid":2400,"total":2400,
	"customer_email":"Erin@Example.org","customer_name":"Erin Erasable",
	"customer_address":{"line1":"42 Forgetme Street","city":"Erasetown","country":"DE"},
	"customer_shipping":{"name":"Erin Erasable","address":{"line1":"42 Forgetme Street"}},
	"description":"Box for Erin Erasable <erin@example.org>",
	"lines":{"data":[{"id":"il_1","amount":2400,"price":{"id":"price_1","unit_amount":2400}}]},
	"charge":{"id":"ch_1","billing_details":{"email":"erin@example.org","name":"Erin Erasable","phone":"+49 30 1234567"}}}}}`

func TestMentionsFindsEventsByIdOrPersonalText(t *testing.T) {
	t.Parallel()
	ev := []byte(stripeEvent)
	require.True(t, mentions(ev, map[string]bool{"cus_erin": true}, nil), "by Stripe customer id")
	require.True(t, mentions(ev, map[string]bool{"in_1": true}, nil), "by invoice id")
	require.True(t, mentions(ev, map[string]bool{}, []string{"erin@example.org"}), "by e-mail, whatever its case")
	require.False(t, mentions(ev, map[string]bool{"cus_olga": true, "in_": true}, []string{"olga@example.org"}),
		"ids match whole values only; nobody else's event")
	require.False(t, mentions([]byte(`not json`), map[string]bool{"cus_erin": true}, nil))
}

func TestScrubPayloadKeepsWhatHappenedAndDropsWho(t *testing.T) {
	t.Parallel()
	out := scrubPayload([]byte(stripeEvent), []string{"erin@example.org", "Erin Erasable"})
	s := string(out)
	for _, gone := range []string{"erin@example.org", "Erin@Example.org", "Erin Erasable", "42 Forgetme Street", "Erasetown", "+49 30"} {
		require.NotContains(t, s, gone)
	}
	var tree map[string]any
	require.NoError(t, json.Unmarshal(out, &tree))
	obj := tree["data"].(map[string]any)["object"].(map[string]any)
	require.Equal(t, "in_1", obj["id"])
	require.Equal(t, "cus_erin", obj["customer"])
	require.EqualValues(t, 2400, obj["amount_paid"])
	require.Nil(t, obj["customer_email"])
	require.Equal(t, "Box for [erased] <[erased]>", obj["description"])
	require.Equal(t, true, tree["erased"])

	require.JSONEq(t, `{"erased":true}`, string(scrubPayload([]byte("not json"), nil)))
}

func TestReplaceFold(t *testing.T) {
	t.Parallel()
	require.Equal(t, "to [x] and [x].", replaceFold("to Erin and ERIN.", "erin", "[x]"))
	require.Equal(t, "nothing", replaceFold("nothing", "", "[x]"))
}
